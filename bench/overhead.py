"""Per-request overhead of the guard over hand-written Flask doing the same work, same run.

    python bench/overhead.py [--n 3000] [--rounds 5]

Each variant is a GET through Flask's test client; variants are interleaved in rounds so that
background load hits them all alike. Reported: median microseconds per request, and the guard's
extra cost over its hand-written twin (OPEN, bearer + role, bearer + object, bearer + ROUTE).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import flask
import jwt

from flask_casbin_guard import Flask

SECRET = "bench-secret-bench-secret-bench-secret!!"
POLICY = "g, alice, employee\np, alice, store:7, manager\np, alice, /route/<sid>, GET\n"
ROLES = {"alice": {"employee"}}
GRANTS = {("alice", "store:7", "manager"), ("alice", "/route/<sid>", "GET")}


def guarded_app(policy_path: str) -> Flask:
    app = Flask("bench")
    app.config.update(GUARD_POLICY=policy_path, GUARD_JWT_SECRET=SECRET, GUARD_AUTH=["bearer"])
    app.get("/open", authorize="OPEN")(lambda: "ok")
    app.get("/role", authorize="employee", endpoint="role")(lambda: "ok")

    @app.get("/object/<sid>", authorize=("store", "sid", "manager"))
    def obj(sid: int) -> str:
        return "ok"

    @app.get("/route/<sid>", authorize="ROUTE")
    def route(sid: int) -> str:
        return "ok"

    return app


def bare_app() -> flask.Flask:
    """The same checks written by hand: decode the JWT, look up roles/grants, convert sid."""
    app = flask.Flask("bare")

    def login() -> str:
        header = flask.request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            flask.abort(401)
        try:
            claims = jwt.decode(
                header[7:], SECRET, algorithms=["HS256"], options={"require": ["exp", "sub"]}
            )
        except jwt.PyJWTError:
            flask.abort(401)
        return str(claims["sub"])

    app.get("/open")(lambda: "ok")

    @app.get("/role")
    def role() -> str:
        if "employee" not in ROLES.get(login(), ()):
            flask.abort(403)
        return "ok"

    @app.get("/object/<sid>")
    def obj(sid: str) -> str:
        user = login()
        if not sid.isdigit() or (user, f"store:{int(sid)}", "manager") not in GRANTS:
            flask.abort(403)
        return "ok"

    @app.get("/route/<sid>")
    def route(sid: str) -> str:
        rule = flask.request.url_rule.rule if flask.request.url_rule else ""
        if (login(), rule, "GET") not in GRANTS:
            flask.abort(403)
        return "ok"

    return app


def timer(client: Any, path: str, headers: dict[str, str], n: int) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code}")
        return (time.perf_counter() - start) / n * 1e6

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as policy:
        policy.write(POLICY)
    guard_app, plain = guarded_app(policy.name), bare_app()
    with guard_app.app_context():
        token = guard_app.guard.create_token("alice")
    auth = {"Authorization": f"Bearer {token}"}
    cases = [
        ("OPEN", "/open", {}),
        ("bearer + role", "/role", auth),
        ("bearer + object", "/object/7", auth),
        ("bearer + ROUTE", "/route/7", auth),
    ]
    timers = {
        (name, kind): timer(app.test_client(), path, headers, args.n)
        for name, path, headers in cases
        for kind, app in (("bare", plain), ("guard", guard_app))
    }
    for run in timers.values():
        run()  # warm-up: first request, caches, imports
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in timers}
    for _ in range(args.rounds):
        for key, run in timers.items():
            samples[key].append(run())
    print(f"{'route':<18}{'bare µs':>10}{'guard µs':>10}{'overhead µs':>13}{'ratio':>8}")
    for name, _, _ in cases:
        bare = statistics.median(samples[(name, "bare")])
        guard = statistics.median(samples[(name, "guard")])
        print(f"{name:<18}{bare:>10.1f}{guard:>10.1f}{guard - bare:>13.1f}{guard / bare:>8.2f}")


if __name__ == "__main__":
    main()
