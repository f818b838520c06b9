"""Bounded work and memory (issue 23, "Trust IV"): every attack goes through HTTP.

Hostile input cannot stall a worker, pin its memory, or get fresh guesses by changing the case
of a login. Attacks that would stall a worker run in a thread with a deadline derived from a
baseline request, so a regression fails the test instead of hanging it. docs/security.md,
"Trust IV: bounded work and memory", lists them with their figures.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import flask
import pytest
from passlib.hash import sha512_crypt

from conftest import PASSWORDS
from flask_casbin_guard import CasbinGuard
from flask_casbin_guard.pipeline import STATE_KEY
from helpers import basic, bearer, timed, within

#: sha512_crypt rounds of the "legacy" hash: low enough for a quick test, high enough that its
#: cost grows with the password's length as passlib's default (656,000 rounds) does
LEGACY_ROUNDS = 80_000


# --- item 6: unauthenticated work is bounded ---------------------------------------------------


def legacy_app(guard_config: dict[str, Any], **extra: Any) -> flask.Flask:
    hashes = {"alice": sha512_crypt.using(rounds=LEGACY_ROUNDS).hash(PASSWORDS["alice"])}
    app = flask.Flask(__name__)
    app.config.update(
        guard_config,
        GUARD_AUTH=["basic"],
        **{
            "GUARD_GET_USER_PASS": hashes.get,
            "GUARD_AUTH_RATE_LIMIT": "",
            "GUARD_AUTH_IP_RATE_LIMIT": "",
            "GUARD_AUTH_LOGIN_CEILING": "",
            **extra,
        },
    )
    guard = CasbinGuard(app)
    app.get("/me")(guard.authorize("AUTH")(lambda: "me"))
    return app


def test_a_long_wrong_password_costs_what_a_short_one_costs(
    guard_config: dict[str, Any],
) -> None:
    client = legacy_app(guard_config).test_client()

    def attempt(login: str, password: str) -> Callable[[], None]:
        def send() -> None:
            assert client.get("/me", headers=basic(login, password)).status_code == 401

        return send

    attempt("alice", "warm-up")()
    # The slowest ordinary refusal: a short wrong password, or an unknown login (dummy hash).
    baseline = max(
        statistics.median(timed(attempt("alice", "wrong password")) for _ in range(3)),
        statistics.median(timed(attempt("nobody", "wrong password")) for _ in range(3)),
    )
    # 4,096 characters cost ~20x a short one against sha512_crypt before the bound.
    took = within(4 * baseline + 0.1, attempt("alice", "w" * 4096))
    assert took is not None, f"a 4 KB wrong password outlived {4 * baseline + 0.1:.2f} s"
    # And no less either: an over-long password must not be refused visibly sooner.
    assert took > baseline / 4


def test_the_password_bound_is_configurable_and_refuses_long_right_passwords(
    guard_config: dict[str, Any],
) -> None:
    long_password = "p" * 200
    hashes = {"alice": sha512_crypt.using(rounds=1000).hash(long_password)}
    for limit, status in ((128, 401), (256, 200)):
        extra = {"GUARD_PASSWORD_MAX_LENGTH": limit, "GUARD_GET_USER_PASS": hashes.get}
        client = legacy_app(guard_config, **extra).test_client()
        assert client.get("/me", headers=basic("alice", long_password)).status_code == status


def test_new_passwords_longer_than_the_bound_are_refused_clearly(
    guard_config: dict[str, Any],
) -> None:
    from flask_casbin_guard.errors import PasswordPolicyError

    app = legacy_app(guard_config, GUARD_PASSWORD_MAX_LENGTH=64)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    with app.app_context():
        assert guard.hash_password("x" * 64).startswith("$argon2id$")
        with pytest.raises(PasswordPolicyError, match="at most 64 characters"):
            guard.hash_password("x" * 65)


# --- item 9: failed-login limits see through case variants ------------------------------------


def case_blind_app(
    guard_config: dict[str, Any], hashes: dict[str, str], **extra: Any
) -> flask.Flask:
    """An app whose user lookup ignores case, as many (SQL ``ILIKE``, CITEXT) do."""
    app = flask.Flask(__name__)
    app.config.update(
        guard_config,
        **{
            "GUARD_AUTH": ["basic"],
            "GUARD_GET_USER_PASS": lambda login: hashes.get(login.lower()),
            "GUARD_AUTH_RATE_LIMIT": "3 per minute",
            "GUARD_AUTH_IP_RATE_LIMIT": "",
            **extra,
        },
    )
    guard = CasbinGuard(app)
    app.get("/me")(guard.authorize("AUTH")(lambda: "me"))
    return app


def test_case_variants_of_a_limited_login_get_no_fresh_attempts(
    guard_config: dict[str, Any], password_hashes: dict[str, str]
) -> None:
    client = case_blind_app(guard_config, password_hashes).test_client()
    for _ in range(3):
        assert client.get("/me", headers=basic("alice", "wrong password")).status_code == 401
    assert client.get("/me", headers=basic("alice", "wrong password")).status_code == 429
    # The lookup finds alice under each of these: each must meet alice's limit, not a new one.
    for variant in ("Alice", "ALICE", "aLiCe", "\uff41lice"):  # the last: fullwidth "a"
        answer = client.get("/me", headers=basic(variant, "wrong password"))
        assert answer.status_code == 429, variant
    # Another login from the same client is not concerned.
    assert client.get("/me", headers=basic("bob", PASSWORDS["bob"])).status_code == 200


def test_the_login_normalization_is_configurable(
    guard_config: dict[str, Any], password_hashes: dict[str, str]
) -> None:
    # Counting logins as typed (for an exact lookup): case variants are other logins.
    exact = {"GUARD_NORMALIZE_LOGIN": lambda login: login}
    client = case_blind_app(guard_config, password_hashes, **exact).test_client()
    for _ in range(3):
        assert client.get("/me", headers=basic("alice", "wrong password")).status_code == 401
    assert client.get("/me", headers=basic("ALICE", "wrong password")).status_code == 401


# --- item 8: session cookies are Secure on HTTPS requests -------------------------------------


def session_app(guard_config: dict[str, Any], **extra: Any) -> flask.Flask:
    from flask_casbin_guard.auth import auth_blueprint

    app = flask.Flask(__name__)
    app.config.update(
        guard_config,
        SECRET_KEY="a-session-secret-of-more-than-32-characters",
        GUARD_AUTH=["session"],
        **extra,
    )
    CasbinGuard(app)
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")
    return app


def session_cookie(app: flask.Flask, base_url: str, **headers: str) -> str:
    body = {"login": "alice", "password": PASSWORDS["alice"]}
    answer = app.test_client().post("/auth/login", json=body, base_url=base_url, headers=headers)
    assert answer.status_code == 200
    [cookie] = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def test_session_cookies_are_secure_on_https_requests(guard_config: dict[str, Any]) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = session_app(guard_config)  # GUARD_SESSION_SECURE unset, PREFERRED_URL_SCHEME http
    assert "Secure" in session_cookie(app, "https://localhost")
    assert "Secure" not in session_cookie(app, "http://localhost")
    # Behind a TLS-terminating proxy, once the app trusts its X-Forwarded-Proto.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)
    assert "Secure" in session_cookie(app, "http://localhost", **{"X-Forwarded-Proto": "https"})
    assert "Secure" not in session_cookie(app, "http://localhost")


def test_an_explicit_session_secure_setting_wins(guard_config: dict[str, Any]) -> None:
    app = session_app(guard_config, GUARD_SESSION_SECURE=False)
    assert "Secure" not in session_cookie(app, "https://localhost")
    app = session_app(guard_config, GUARD_SESSION_SECURE=True)
    assert "Secure" in session_cookie(app, "http://localhost")


# --- item 2: memory bounded in bytes, not entries ---------------------------------------------

MiB = 1 << 20


def files_app(guard_config: dict[str, Any], **extra: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(guard_config, GUARD_AUTH=["bearer"], **extra)
    guard = CasbinGuard(app)
    app.post("/files")(guard.authorize(("file", "name", "read"))(lambda name: name))
    return app


def retained_by(attack: Callable[[], None]) -> int:
    """Bytes still allocated once ``attack`` is over and its garbage collected."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        attack()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def megabyte_denials(app: flask.Flask, expected: int) -> Callable[[], None]:
    """48 requests, each for a different 1 MB object value, by a user with no rights."""
    with app.app_context():
        token = app.extensions["casbin_guard"].create_token("nobody")
    client = app.test_client()

    def attack() -> None:
        for i in range(48):
            name = f"{i:02d}" + "x" * (MiB - 2)
            answer = client.post("/files", json={"name": name}, headers=bearer(token))
            assert answer.status_code == expected
            del answer

    return attack


def test_megabyte_object_values_are_refused_and_pin_nothing(
    guard_config: dict[str, Any],
) -> None:
    app = files_app(guard_config)
    client = app.test_client()
    with app.app_context():
        token = app.extensions["casbin_guard"].create_token("nobody")
    answer = client.post("/files", json={"name": "x" * 1025}, headers=bearer(token))
    assert answer.status_code == 400
    assert answer.json["details"][0]["expected"] == "at most 1024 characters"
    assert (
        client.post("/files", json={"name": "x" * 1024}, headers=bearer(token)).status_code == 403
    )
    # Before the bound: 403 each, and 47 MiB pinned by the decision cache's keys.
    retained = retained_by(megabyte_denials(app, 400))
    assert retained < 2 * MiB, f"{retained / MiB:.1f} MiB retained"


def test_the_decision_cache_is_bounded_in_bytes(guard_config: dict[str, Any]) -> None:
    # Values as long as a megabyte are allowed here: the cache alone must bound what they pin.
    app = files_app(guard_config, GUARD_MAX_OBJECT_LENGTH=MiB, GUARD_DECISION_CACHE_BYTES=4 * MiB)
    retained = retained_by(megabyte_denials(app, 403))
    assert retained < 6 * MiB, f"{retained / MiB:.1f} MiB retained"
    info = app.extensions[STATE_KEY].holder.engine._cached_explain.cache_info()
    assert info.bytes <= info.maxbytes == 4 * MiB and info.currsize <= 4


# --- item 2: revocation checks in memory, kept current ----------------------------------------


def counted_reads(app: flask.Flask) -> list[tuple[str, ...]]:
    """Every token-id read the app's revocation store answers from now on."""
    store = app.extensions[STATE_KEY].revocations._store
    reads: list[tuple[str, ...]] = []
    real = store.is_revoked

    def counting(*jtis: str) -> bool:
        reads.append(jtis)
        return bool(real(*jtis))

    store.is_revoked = counting
    return reads


def test_revocation_checks_are_in_memory_and_kept_current(guard_config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config, GUARD_AUTH=["bearer"])
    guard = CasbinGuard(app)
    app.get("/me")(guard.authorize("AUTH")(lambda: "me"))
    # Another process on the same revocation store (its own state, caches and connections).
    other = flask.Flask(__name__)
    other.config.update(guard_config, GUARD_AUTH=["bearer"])
    other_guard = CasbinGuard(other)
    ttl = app.extensions[STATE_KEY].revocations._ttl
    assert ttl <= app.extensions[STATE_KEY].settings.watcher_interval
    with app.app_context():
        mine, theirs = guard.create_token("alice"), guard.create_token("bob")
    client = app.test_client()
    reads = counted_reads(app)
    started = time.monotonic()
    for _ in range(50):
        assert client.get("/me", headers=bearer(mine)).status_code == 200
    # Before: one database read per request (~0.5 ms each); now one per ttl at most.
    assert len(reads) <= 1 + (time.monotonic() - started) / ttl, len(reads)
    # This process's own revocation applies at once.
    with app.app_context():
        guard.revoke_token(mine)
    assert client.get("/me", headers=bearer(mine)).status_code == 401
    # Another process's within the bound (the policy-sync interval, 1 s at most).
    assert client.get("/me", headers=bearer(theirs)).status_code == 200
    with other.app_context():
        other_guard.revoke_token(theirs)
    revoked_at = time.monotonic()
    while True:
        sent = time.monotonic()
        status = client.get("/me", headers=bearer(theirs)).status_code
        if status == 401:
            break
        assert status == 200
        assert sent - revoked_at <= ttl, "another process's revocation unseen past the bound"
        time.sleep(0.05)


def test_in_memory_revocations_insert_in_constant_time_and_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flask_casbin_guard.authn.revocation import MemoryRevocations

    revocations = MemoryRevocations()
    soon = time.time() + 3600

    def fill() -> None:
        for i in range(20_000):
            revocations.revoke(f"jti-{i}", soon)

    # Each insert used to scan every id (20,000 inserts: 2e8 steps); now each costs O(1).
    assert within(5.0, fill) is not None, "20,000 revocations took more than 5 s"
    assert revocations.is_revoked("jti-19999") and not revocations.is_revoked("other")
    assert revocations.claim("once", time.time() - 120) and not revocations.claim("once", soon)
    revocations.revoke("late", time.time() + 30)
    later = time.time() + 300
    monkeypatch.setattr(time, "time", lambda: later)  # five minutes on
    revocations.revoke("trigger", later + 60)  # a write purges what expired
    assert not revocations.is_revoked("late") and not revocations.is_revoked("once")
    assert revocations.is_revoked("jti-0") and revocations.is_revoked("trigger")
