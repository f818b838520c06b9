"""Memory stays bounded whatever the requests: decisions, role lookups, tokens, failed logins.

Every structure that remembers something per request value has a bound: the decision cache
(``GUARD_DECISION_CACHE_SIZE``), the verified-token cache (``TOKEN_CACHE_SIZE``), the role graphs
(built from the policy only), and the failed-login counts (expired and swept).
"""

from __future__ import annotations

import gc
import os
import random
import time
from pathlib import Path
from typing import Any

import flask
import pytest

from conftest import POLICIES
from flask_casbin_guard import CasbinGuard
from flask_casbin_guard.authn.bearer import BearerScheme
from flask_casbin_guard.authn.ratelimit import FailureLimiter
from flask_casbin_guard.authz.engine import DECISION_CACHE_SIZE, PolicyEngine
from flask_casbin_guard.config import GuardSettings
from flask_casbin_guard.errors import TooManyAttempts
from flask_casbin_guard.pipeline import STATE_KEY
from flask_casbin_guard.store.csv import read_policy_file
from helpers import JWT_SECRET, bearer

MODEL = POLICIES / "rbac_model.conf"
POLICY = POLICIES / "rbac_policy.csv"
MiB = 1 << 20
#: RSS growth tolerated between 100k and 1M decisions (allocator noise, not a leak)
MAX_GROWTH = 4 * MiB


def rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_app(**config: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(
        TESTING=True,
        GUARD_AUTH=["bearer"],
        GUARD_JWT_SECRET=JWT_SECRET,
        GUARD_MODEL=str(MODEL),
        GUARD_POLICY=str(POLICY),
        **config,
    )
    CasbinGuard(app)
    return app


def engine_of(app: flask.Flask) -> PolicyEngine:
    engine: PolicyEngine = app.extensions[STATE_KEY].holder.engine
    return engine


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_memory_is_flat_over_a_million_decisions_for_unknown_subjects() -> None:
    # The public ``guard.enforce`` adds ~7 µs of app-context lookup per call (about 19 s for a
    # million on a 2-core VM); the engine below it is what remembers anything, so the million
    # go to the engine (~11 µs each: every one is a cache miss) and the API gets its own check.
    engine = engine_of(make_app())
    explain = engine.explain
    prefix = f"{random.getrandbits(32):08x}-"
    graph = engine._graphs["g"]
    members = graph.members
    for i in range(100_000):
        explain(f"{prefix}{i}", "store:1", "manager")
    gc.collect()
    before = rss()
    started = time.perf_counter()
    for i in range(100_000, 1_000_000):
        explain(f"{prefix}{i}", "store:1", "manager")
    elapsed = time.perf_counter() - started
    gc.collect()
    growth = rss() - before
    assert growth < MAX_GROWTH, f"RSS grew {growth / MiB:.1f} MiB over 900k decisions"
    info = engine._cached_explain.cache_info()  # type: ignore[attr-defined]
    assert info.maxsize == DECISION_CACHE_SIZE and info.currsize == DECISION_CACHE_SIZE
    assert info.misses >= 1_000_000
    assert graph.members is members and graph.roles(f"{prefix}1") == frozenset()
    assert engine._reference is None  # no pycasbin enforcer was built on the side
    assert elapsed < 60, f"{elapsed:.1f} s for 900k decisions"


def test_public_enforce_and_reload_keep_the_cache_bounded() -> None:
    app = make_app(GUARD_DECISION_CACHE_SIZE=128)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    with app.app_context():
        for i in range(5_000):
            assert not guard.enforce(f"stranger{i}", "store:1", "manager")
            assert not guard.has_role(f"stranger{i}", "employee")
        assert guard.enforce("carol", "store:1", "manager")
        guard.reload_policy()
        for i in range(1_000):
            guard.enforce(f"other{i}", "store:1", "manager")
    info = engine_of(app)._cached_explain.cache_info()  # type: ignore[attr-defined]
    assert (info.maxsize, info.currsize) == (128, 128)


def test_http_requests_of_unknown_subjects_keep_every_cache_bounded() -> None:
    app = make_app(GUARD_DECISION_CACHE_SIZE=64)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    app.get("/store/<sid>")(guard.authorize(("store", "sid", "manager"))(lambda sid: "ok"))
    client = app.test_client()
    state = app.extensions[STATE_KEY]
    with app.app_context():
        tokens = [guard.create_token(f"nobody{i}") for i in range(600)]
    for i, token in enumerate(tokens):
        assert client.get(f"/store/{i}", headers=bearer(token)).status_code == 403
    info = engine_of(app)._cached_explain.cache_info()  # type: ignore[attr-defined]
    assert (info.maxsize, info.currsize) == (64, 64)
    assert state.bearer._verified.cache_info().currsize == len(tokens)  # under its bound


@pytest.mark.parametrize("fast", [True, False], ids=["indexed", "pycasbin"])
def test_role_structures_do_not_grow_with_unknown_names(fast: bool) -> None:
    rows = read_policy_file(POLICY, {"p": 3, "g": 2})
    engine = PolicyEngine(MODEL.read_text(), rows, fast=fast, cache_size=0)
    enforcer = engine._enforcer  # the pycasbin fallback, built on demand for the indexed one
    managers = list(enforcer.rm_map.values())
    sizes = [len(manager.all_roles) for manager in managers]
    for i in range(20_000 if fast else 3_000):  # pycasbin scans every rule: ~100 µs each
        assert not engine.enforce(f"ghost{i}", "store:1", "manager")
        assert not engine.has_role(f"ghost{i}", f"role{i}")
    assert [len(manager.all_roles) for manager in managers] == sizes
    assert engine.enforce("carol", "store:1", "manager")


@pytest.mark.parametrize("size", [None, 100], ids=["default", "GUARD_JWT_CACHE_SIZE"])
def test_verified_token_cache_stays_within_its_size(size: int | None) -> None:
    options = {} if size is None else {"jwt_cache_size": size}
    settings = GuardSettings(jwt_secret=JWT_SECRET, **options)
    bound = settings.jwt_cache_size
    assert size is not None or bound == 4096
    scheme = BearerScheme(settings, "test")
    count = bound + 500
    for i in range(count):
        claims = scheme.decode(scheme.create_token(f"user{i}"))
        assert claims["sub"] == f"user{i}"
    info = scheme._verified.cache_info()  # type: ignore[attr-defined]
    assert info.misses == count
    assert (info.maxsize, info.currsize) == (bound, bound)


def test_failed_login_counts_in_memory_are_swept_once_expired() -> None:
    limiter = FailureLimiter(
        "3 per 1 second",
        "50 per 1 second",
        "memory://",
        login_ceiling="100 per 1 second",
        slow="1 per 1 second",
    )
    limiter.in_flight_expiry = 1
    storage = limiter._storage
    for i in range(5_000):
        limiter.check(f"made-up-{i}", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
        limiter.failed(f"made-up-{i}", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    # one key per (login, address), slowed pair, login and address
    assert len(storage.events) == 20_000
    time.sleep(1.2)  # every failure has left its one-second window, every check its counter
    limiter.prune_interval = 0.0
    limiter.failed("alice", "192.0.2.1")
    deadline = time.monotonic() + 5
    while len(storage.events) > 4 and time.monotonic() < deadline:
        time.sleep(0.05)
        limiter.failed("alice", "192.0.2.1")
    assert len(storage.events) <= 4, f"{len(storage.events)} keys kept after expiry"
    assert len(storage.storage) == 0, f"{len(storage.storage)} in-flight counters kept"
    assert len(storage.locks) <= 4
    # Limits still hold after a sweep.
    for _ in range(3):
        limiter.failed("alice", "192.0.2.1")
    with pytest.raises(TooManyAttempts):
        limiter.check("alice", "192.0.2.1")
