"""Authentication timing, measured in one run.

    python bench/authn.py [--n 40]

1. For every password-accepting path (Basic, the ``param`` scheme, the session login endpoint
   and the token endpoint): median time of "unknown user" vs "known user, wrong password",
   interleaved. The ratio must stay within 0.8-1.25: timing must not tell which logins exist.
2. The per-request cost of a bearer token already verified (cached) vs a new one each time.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Callable
from typing import Any

from flask_casbin_guard import CurrentUser, Flask
from flask_casbin_guard.auth import auth_blueprint
from flask_casbin_guard.authn.passwords import PasswordHasher

SECRET = "bench-secret-bench-secret-bench-secret!!"


def make_app() -> Flask:
    users = {"alice": PasswordHasher().hash("alice-password-123")}
    app = Flask("bench")
    app.config.update(
        SECRET_KEY=SECRET,
        GUARD_AUTH=["bearer", "basic", "param", "session"],
        GUARD_JWT_SECRET=SECRET,
        GUARD_GET_USER_PASS=users.get,
        GUARD_AUTH_RATE_LIMIT="",  # measuring, not limiting
        GUARD_AUTH_IP_RATE_LIMIT="",
        GUARD_AUTH_LOGIN_CEILING="",
    )
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")

    @app.route("/me", methods=["GET", "POST"], authorize="AUTH")
    def me(user: CurrentUser) -> str:
        return user

    return app


def basic(login: str) -> dict[str, str]:
    raw = base64.b64encode(f"{login}:wrong-password-123".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="attempts per case")
    args = parser.parse_args()
    client = make_app().test_client()
    body = {"password": "wrong-password-123"}
    paths: dict[str, Callable[[str], Any]] = {
        "basic": lambda login: client.get("/me", headers=basic(login)),
        "param": lambda login: client.post("/me", json={"login": login, **body}),
        "session login": lambda login: client.post("/auth/login", json={"login": login, **body}),
        "token endpoint": lambda login: client.post("/auth/token", json={"login": login, **body}),
    }
    print(f"{'path':<16}{'unknown ms':>12}{'wrong pw ms':>13}{'ratio':>8}  within 0.8-1.25")
    for name, attempt in paths.items():
        attempt("alice"), attempt("nobody")  # warm-up (the dummy hash is made on first use)
        unknown, wrong = [], []
        for _ in range(args.n):
            unknown.append(timed(lambda attempt=attempt: attempt("nobody")))
            wrong.append(timed(lambda attempt=attempt: attempt("alice")))
        u, w = statistics.median(unknown) * 1e3, statistics.median(wrong) * 1e3
        verdict = "yes" if 0.8 <= u / w <= 1.25 else "NO"
        print(f"{name:<16}{u:>12.2f}{w:>13.2f}{u / w:>8.2f}  {verdict}")

    app = client.application
    with app.app_context():
        cached = app.guard.create_token("alice")  # type: ignore[attr-defined]
        fresh = [app.guard.create_token("alice") for _ in range(args.n * 50)]  # type: ignore[attr-defined]

    def with_token(token: str) -> Any:
        return client.get("/me", headers={"Authorization": f"Bearer {token}"})

    with_token(cached)
    hot = [timed(lambda: with_token(cached)) for _ in range(len(fresh))]
    cold = [timed(lambda t=t: with_token(t)) for t in fresh]
    h, c = statistics.median(hot) * 1e6, statistics.median(cold) * 1e6
    print(f"\nbearer, verified token cached: {h:.1f} µs/request; new token each: {c:.1f} µs")
    print(f"the cache saves {c - h:.1f} µs per request ({c / h:.2f}x)")


if __name__ == "__main__":
    main()
