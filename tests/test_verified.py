"""Basic's remembered verifications: bounds, and over HTTP, one argon2 check for many requests
that never outlives a password change, a disable, a delete or a revocation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_casbin_guard import CurrentUser, Flask
from flask_casbin_guard.authn.passwords import PasswordHasher
from flask_casbin_guard.authn.verified import VerifiedPasswords
from helpers import basic

PASSWORD = "a long enough password"
NEW_PASSWORD = "another long enough password"


def no_stamp(login: str) -> float | None:
    return None


class Counting:
    """Counts the hasher's ``verify`` calls (each one an argon2 verification)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.verify = hasher.verify
        self.calls = 0

    def __call__(self, password: str, stored: str | None) -> bool:
        self.calls += 1
        return self.verify(password, stored)


@pytest.fixture
def verifies(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counting]:
    hasher = PasswordHasher()
    counting = Counting(hasher)
    monkeypatch.setattr(hasher, "verify", counting)
    monkeypatch.setattr("flask_casbin_guard.extension.PasswordHasher", lambda: hasher)
    yield counting


def store_app(config: dict[str, Any], tmp_path: Path, **extra: Any) -> Flask:
    """An app on the built-in user store (a SQLite file shared by the apps of one test)."""
    app = Flask(__name__)
    app.config.update(
        config,
        GUARD_GET_USER_PASS=None,
        GUARD_POLICY=f"sqlite:///{tmp_path / 'users.db'}",
        GUARD_AUTH=["bearer", "basic"],
        GUARD_DEFAULT_ROLES=["employee"],
        **extra,
    )

    @app.get("/me", authorize="employee")
    def me(user: CurrentUser) -> str:
        return user

    return app


@pytest.fixture
def app(guard_config: dict[str, Any], tmp_path: Path, verifies: Counting) -> Flask:
    app = store_app(guard_config, tmp_path)
    with app.app_context():
        app.guard.create_user("erin", PASSWORD)
    return app


def status(app: Flask, password: str = PASSWORD, login: str = "erin") -> int:
    return app.test_client().get("/me", headers=basic(login, password)).status_code


def remembered(app: Flask) -> int:
    """Successes the app remembers (a forgotten one leaves no trace of the password)."""
    with app.app_context():
        return len(app.guard._state().verified)


def test_entries_are_bounded_in_number_and_bytes() -> None:
    cache = VerifiedPasswords(60, maxsize=3, maxbytes=1 << 20)
    for n in range(5):
        cache.remember(f"user{n}", "pw", "hash", None, cache.generation)
    assert len(cache) == 3
    assert not cache.known("user0", "pw", "hash", no_stamp)
    assert cache.known("user4", "pw", "hash", no_stamp)
    small = VerifiedPasswords(60, maxbytes=600)
    for n in range(10):
        small.remember(f"user{n}", "pw", "hash", None, small.generation)
    assert 0 < len(small) < 10
    small.remember("x" * 1000, "pw", "hash", None, small.generation)  # heavier than the budget
    assert not small.known("x" * 1000, "pw", "hash", no_stamp)


def test_entries_hold_neither_password_nor_plain_hash() -> None:
    cache = VerifiedPasswords(60)
    cache.remember("erin", PASSWORD, "stored-hash", None, cache.generation)
    other = VerifiedPasswords(60)
    other.remember("erin", PASSWORD, "stored-hash", None, other.generation)
    (digest,) = cache._entries
    (elsewhere,) = other._entries
    assert PASSWORD.encode() not in digest and digest != elsewhere  # keyed per process


def test_an_entry_needs_the_same_hash_stamp_and_generation() -> None:
    cache = VerifiedPasswords(60)
    cache.remember("erin", PASSWORD, "h1", 5.0, cache.generation)
    assert cache.known("erin", PASSWORD, "h1", lambda login: 5.0)
    assert not cache.known("erin", PASSWORD + "x", "h1", lambda login: 5.0)
    assert not cache.known("erin", PASSWORD, "h2", lambda login: 5.0)
    assert not cache.known("erin", PASSWORD, None, lambda login: 5.0)
    assert not cache.known("erin", PASSWORD, "h1", lambda login: 6.0)
    assert not cache.known("erin", PASSWORD, "h1", lambda login: 5.0)  # dropped above
    started = cache.generation
    cache.forget("erin")
    cache.remember("erin", PASSWORD, "h1", 5.0, started)  # verified across the forget
    assert not cache.known("erin", PASSWORD, "h1", lambda login: 5.0)


def test_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = VerifiedPasswords(60)
    cache.remember("erin", PASSWORD, "h", None, cache.generation)
    later = time.monotonic() + 61
    monkeypatch.setattr("flask_casbin_guard.authn.verified.time.monotonic", lambda: later)
    assert not cache.known("erin", PASSWORD, "h", no_stamp)


def test_many_basic_requests_verify_once(app: Flask, verifies: Counting) -> None:
    assert [status(app) for _ in range(20)] == [200] * 20
    assert verifies.calls == 1


def test_wrong_passwords_are_verified_and_counted_every_time(
    app: Flask, verifies: Counting
) -> None:
    assert status(app) == 200
    before = verifies.calls
    assert [status(app, "wrong password!!") for _ in range(3)] == [401] * 3
    assert verifies.calls == before + 3
    assert [status(app, "wrong password!!") for _ in range(10)][-1] == 429  # limiter counted
    assert status(app, login="nobody") == 401


def test_a_password_change_refuses_the_old_password_at_once(app: Flask) -> None:
    assert status(app) == status(app) == 200
    with app.app_context():
        app.guard.set_password("erin", NEW_PASSWORD)
    assert remembered(app) == 0
    assert status(app) == 401
    assert status(app, NEW_PASSWORD) == 200


def test_disable_and_delete_refuse_at_once(app: Flask, verifies: Counting) -> None:
    assert status(app) == status(app) == 200
    with app.app_context():
        app.guard.set_active("erin", False)
    assert status(app) == 401
    with app.app_context():
        app.guard.set_active("erin", True)
    calls = verifies.calls
    assert status(app) == 200
    assert verifies.calls == calls + 1  # verified again, not remembered across the disable
    assert remembered(app) == 1
    with app.app_context():
        app.guard.users.delete("erin")
    assert remembered(app) == 0
    assert status(app) == 401


def test_revoke_user_forgets_the_remembered_success(app: Flask, verifies: Counting) -> None:
    assert status(app) == status(app) == 200
    with app.app_context():
        app.guard.revoke_user("erin")
    assert remembered(app) == 0
    calls = verifies.calls
    assert status(app) == 200  # a password is not a credential issued before the stamp
    assert verifies.calls == calls + 1


def test_changes_made_by_another_process_apply(
    guard_config: dict[str, Any], tmp_path: Path, app: Flask, verifies: Counting
) -> None:
    # Another process: its own app on the same database, revocation answers fresh at 0.05 s.
    fast = store_app(guard_config, tmp_path, GUARD_WATCHER_INTERVAL=0.05)
    other = store_app(guard_config, tmp_path)
    assert status(fast) == status(fast) == 200
    with other.app_context():
        other.guard.revoke_user("erin")
    time.sleep(0.1)
    calls = verifies.calls
    assert status(fast) == 200
    assert verifies.calls == calls + 1  # the stamp moved: verified again
    with other.app_context():
        other.guard.set_password("erin", NEW_PASSWORD)
    assert status(fast) == 401  # the stored hash changed: the old password is verified, wrong
    with other.app_context():
        other.guard.set_active("erin", False)
    assert status(fast, NEW_PASSWORD) == 401


def external_app(config: dict[str, Any], hashes: dict[str, str], **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config, GUARD_GET_USER_PASS=hashes.get, GUARD_AUTH=["basic"], **extra)
    app.get("/me", authorize="AUTH")(lambda: "ok")
    return app


def test_an_external_store_whose_hash_changes_refuses_the_old_password(
    guard_config: dict[str, Any], verifies: Counting
) -> None:
    hashes = {"erin": verifies.hasher.hash(PASSWORD)}
    app = external_app(guard_config, hashes)
    assert [status(app) for _ in range(5)] == [200] * 5
    assert verifies.calls == 1
    hashes["erin"] = verifies.hasher.hash(NEW_PASSWORD)
    assert status(app) == 401
    assert status(app, NEW_PASSWORD) == 200
    with app.app_context():
        app.guard.revoke_user("erin")  # stamps kept in memory: no database here
    calls = verifies.calls
    assert status(app, NEW_PASSWORD) == 200
    assert verifies.calls == calls + 1
    del hashes["erin"]
    assert status(app, NEW_PASSWORD) == 401


def test_zero_seconds_verifies_every_request(
    guard_config: dict[str, Any], verifies: Counting
) -> None:
    hashes = {"erin": verifies.hasher.hash(PASSWORD)}
    app = external_app(guard_config, hashes, GUARD_BASIC_CACHE_SECONDS=0)
    assert [status(app) for _ in range(3)] == [200] * 3
    assert verifies.calls == 3
