"""HTTP Basic requests per second with the right password, in one run.

    python bench/basic.py [--n 200] [--rounds 5]

``GUARD_BASIC_CACHE_SECONDS=0`` verifies the argon2id hash on every request (the guard before
the cache); the default remembers a success for 300 s. Rounds are interleaved so that background
load hits both alike; each variant's rounds are reported (requests/s of CPU time), then the
ratio of the medians.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time

from flask.testing import FlaskClient

from flask_casbin_guard import CurrentUser, Flask
from flask_casbin_guard.authn.passwords import PasswordHasher

PASSWORD = "alice-password-123"


def make_app(seconds: float) -> Flask:
    users = {"alice": PasswordHasher().hash(PASSWORD)}
    app = Flask("bench")
    app.config.update(
        GUARD_AUTH=["basic"], GUARD_GET_USER_PASS=users.get, GUARD_BASIC_CACHE_SECONDS=seconds
    )

    @app.get("/me", authorize="AUTH")
    def me(user: CurrentUser) -> str:
        return user

    return app


def rate(client: FlaskClient, headers: dict[str, str], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        if client.get("/me", headers=headers).status_code != 200:
            raise SystemExit("a request was refused")
    return n / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raw = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {raw}"}
    variants = {"verify each": make_app(0).test_client(), "cached": make_app(300).test_client()}
    # The verifying variant is ~1000x slower: fewer requests keep the rounds comparable in time.
    counts = {"verify each": max(args.n // 20, 5), "cached": args.n * 10}
    results: dict[str, list[float]] = {name: [] for name in variants}
    for client in variants.values():
        rate(client, headers, 3)  # warm-up: the first request loads the policy
    for _ in range(args.rounds):
        for name, client in variants.items():
            results[name].append(rate(client, headers, counts[name]))
    for name, rates in results.items():
        shown = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"{name:<12} median {statistics.median(rates):>10,.0f} req/s  rounds: {shown}")
    ratio = statistics.median(results["cached"]) / statistics.median(results["verify each"])
    print(f"cached / verify each: {ratio:,.0f}x")


if __name__ == "__main__":
    main()
