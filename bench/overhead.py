"""Per-request overhead of the guard over hand-written Flask doing the same work, same run.

    python bench/overhead.py [--n 1000] [--rounds 21]

Each variant is a GET through Flask's test client; variants are interleaved in rounds so that
background load hits them all alike. Each round counts the process's CPU time (not wall time:
on a shared VM, time stolen by neighbours swung wall-clock medians by 20-40 µs between two
identical variants), with garbage collection paused as timeit does, and the report takes each
variant's best round. Reported: microseconds per request, and each framework's extra cost over
the hand-written twin (OPEN, bearer + role, bearer + object,
bearer + ROUTE). The hand-written routes decode the JWT on every request, so two guard columns:
``guard`` as configured by default (verified tokens cached until they expire) and ``guard
nc`` with ``GUARD_JWT_CACHE_SIZE=0``, verifying every token like the hand-written code.

When FlaskSimpleAuth is installed (``pip install -e '.[bench]'``), the same routes run on it in
the same rounds (JWT tokens, a group for the role, an object permission; it has nothing like
ROUTE), with its default cache (``fsa``) and with ``FSA_CACHE="none"`` (``fsa nc``), and the
report prints FSA's overhead divided by the guard's, like for like (``fsa nc`` / ``guard nc``).
"""

from __future__ import annotations

import argparse
import gc
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


def guarded_app(policy_path: str, jwt_cache_size: int = 4096) -> Flask:
    app = Flask("bench")
    app.config.update(
        GUARD_POLICY=policy_path,
        GUARD_JWT_SECRET=SECRET,
        GUARD_AUTH=["bearer"],
        GUARD_JWT_CACHE_SIZE=jwt_cache_size,
    )
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


def fsa_app(cache: str) -> Any:
    """The same routes on FlaskSimpleAuth: JWT bearer tokens, a group, an object permission."""
    import logging

    import FlaskSimpleAuth as fsa

    app = fsa.Flask(
        "fsa",
        FSA_MODE="prod",
        FSA_LOGGING_LEVEL=logging.ERROR,
        FSA_AUTH=["token", "none"],
        FSA_AUTH_DEFAULT="token",
        FSA_TOKEN_TYPE="jwt",
        FSA_TOKEN_SECRET=SECRET,
        FSA_TOKEN_DELAY=600.0,
        FSA_GET_USER_PASS=lambda login: None,
        FSA_GROUP_CHECK={"employee": lambda login: "employee" in ROLES.get(login, ())},
        FSA_OBJECT_PERMS={
            "store": lambda login, sid, mode: (login, f"store:{sid}", mode) in GRANTS
        },
        FSA_CACHE=cache,
    )
    app.get("/open", authz="OPEN", authn="none", endpoint="open")(lambda: "ok")
    app.get("/role", authz="employee", endpoint="role")(lambda: "ok")

    def obj(sid: int) -> str:
        return "ok"

    # FSA reads annotations as objects; this module's are strings (from __future__).
    obj.__annotations__ = {"sid": int, "return": str}
    app.get("/object/<sid>", authz=("store", "sid", "manager"))(obj)
    # FSA creates tokens inside its request hooks only: a route hands out alice's token.
    app.get("/token", authz="OPEN", authn="none", endpoint="token")(
        lambda: app.create_token("alice")
    )
    return app


def fsa_token(app: Any) -> str:
    return str(app.test_client().get("/token").get_data(as_text=True))


def timer(client: Any, path: str, headers: dict[str, str], n: int) -> Callable[[], float]:
    def run() -> float:
        # As timeit does: no garbage collection inside a timed run (a collection would land on
        # whichever variant happens to be running), one full collection before it.
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            for _ in range(n):
                response = client.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code}")
            return (time.process_time() - start) / n * 1e6
        finally:
            gc.enable()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as policy:
        policy.write(POLICY)
    guard_app, plain = guarded_app(policy.name), bare_app()
    with guard_app.app_context():
        token = guard_app.guard.create_token("alice")
    auth = {"Authorization": f"Bearer {token}"}
    apps: dict[str, tuple[Any, dict[str, str]]] = {
        "bare": (plain, auth),
        "guard": (guard_app, auth),
        "guard nc": (guarded_app(policy.name, jwt_cache_size=0), auth),
    }
    try:
        for kind, cache in (("fsa", "ttl"), ("fsa nc", "none")):
            app = fsa_app(cache)
            apps[kind] = (app, {"Authorization": f"Bearer {fsa_token(app)}"})
    except ImportError:
        print("FlaskSimpleAuth is not installed: its columns are left out ('.[bench]' has it)")
    cases = [
        ("OPEN", "/open", False),
        ("bearer + role", "/role", True),
        ("bearer + object", "/object/7", True),
        ("bearer + ROUTE", "/route/7", True),
    ]
    timers = {
        (name, kind): timer(app.test_client(), path, headers if bearer else {}, args.n)
        for name, path, bearer in cases
        for kind, (app, headers) in apps.items()
        if not (kind.startswith("fsa") and path.startswith("/route"))
    }
    for run in timers.values():
        run()  # warm-up: first request, caches, imports
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in timers}
    for _ in range(args.rounds):
        for key, run in timers.items():
            samples[key].append(run())
    best = {key: min(values) for key, values in samples.items()}
    others = [kind for kind in apps if kind != "bare"]
    print("µs of CPU per request (best round); +: overhead over the hand-written route")
    header = f"{'route':<17}{'bare':>8}" + "".join(f"{kind:>10}{'+':>7}" for kind in others)
    if "fsa nc" in apps:
        header += f"{'fsa nc/guard nc':>17}"
    print(header)
    for name, _, _ in cases:
        bare = best[(name, "bare")]
        line = f"{name:<17}{bare:>8.1f}"
        for kind in others:
            if (name, kind) in best:
                line += f"{best[(name, kind)]:>10.1f}{best[(name, kind)] - bare:>+7.1f}"
            else:
                line += f"{'n/a':>10}{'':>7}"
        if (name, "fsa nc") in best:
            ours = best[(name, "guard nc")] - bare
            theirs = best[(name, "fsa nc")] - bare
            line += f"{theirs / ours:>16.1f}x" if ours > 0 else f"{'(guard <= bare)':>17}"
        print(line)


if __name__ == "__main__":
    main()
