"""PasswordHasher with real libpass/argon2/bcrypt hashing."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

import bcrypt
import pytest
from passlib.hash import argon2, pbkdf2_sha256

from conftest import PASSWORDS
from flask_casbin_guard.authn.passwords import PasswordHasher, check_password_policy
from flask_casbin_guard.errors import PasswordPolicyError

ARGON2ID_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
LOGGER = "flask_casbin_guard.passwords"


@pytest.fixture(scope="module")
def bcrypt_hash() -> str:
    """A legacy bcrypt hash (cheap rounds) of ``legacy-password``."""
    return bcrypt.hashpw(b"legacy-password", bcrypt.gensalt(rounds=4)).decode()


def test_new_hashes_are_argon2id_with_owasp_parameters(password_hashes: dict[str, str]) -> None:
    for stored in password_hashes.values():
        assert stored.startswith(ARGON2ID_PREFIX)


def test_hashes_are_salted(hasher: PasswordHasher, password_hashes: dict[str, str]) -> None:
    again = hasher.hash(PASSWORDS["alice"])
    assert again != password_hashes["alice"]
    assert hasher.verify(PASSWORDS["alice"], again) is True


def test_hash_never_contains_the_password(password_hashes: dict[str, str]) -> None:
    for login, stored in password_hashes.items():
        assert PASSWORDS[login] not in stored


def test_verify_correct_password(hasher: PasswordHasher, password_hashes: dict[str, str]) -> None:
    assert hasher.verify(PASSWORDS["alice"], password_hashes["alice"]) is True


@pytest.mark.parametrize(
    "attempt", ["bob-password", "alice-passwor", "alice-password ", "ALICE-PASSWORD", "x"]
)
def test_verify_wrong_password(
    hasher: PasswordHasher, password_hashes: dict[str, str], attempt: str
) -> None:
    assert hasher.verify(attempt, password_hashes["alice"]) is False


def test_unicode_password_round_trip(hasher: PasswordHasher) -> None:
    stored = hasher.hash("pässwörd-密码")
    assert hasher.verify("pässwörd-密码", stored) is True
    assert hasher.verify("passwort-密码", stored) is False


def test_unknown_user_is_refused(hasher: PasswordHasher) -> None:
    assert hasher.verify(PASSWORDS["alice"], None) is False
    assert hasher.verify("dummy password used to equalise timing", None) is False


def _median_seconds(call: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_unknown_user_costs_a_hash_verification(
    hasher: PasswordHasher, password_hashes: dict[str, str]
) -> None:
    stored = password_hashes["bob"]
    hasher.verify("warm-up", None)  # the dummy hash is made lazily on first use
    hasher.verify("warm-up", stored)
    unknown = _median_seconds(lambda: hasher.verify("wrong-password", None))
    wrong = _median_seconds(lambda: hasher.verify("wrong-password", stored))
    assert 0.3 * wrong <= unknown <= 3 * wrong, (unknown, wrong)


def test_fresh_argon2id_hash_needs_no_rehash(
    hasher: PasswordHasher, password_hashes: dict[str, str]
) -> None:
    assert hasher.needs_rehash(password_hashes["alice"]) is False


def test_legacy_bcrypt_hash_verifies_and_needs_rehash(
    hasher: PasswordHasher, bcrypt_hash: str
) -> None:
    assert bcrypt_hash.startswith("$2b$04$")
    assert hasher.verify("legacy-password", bcrypt_hash) is True
    assert hasher.verify("legacy-passwore", bcrypt_hash) is False
    assert hasher.needs_rehash(bcrypt_hash) is True


def test_legacy_pbkdf2_hash_verifies_and_needs_rehash(hasher: PasswordHasher) -> None:
    stored = pbkdf2_sha256.using(rounds=1000).hash("legacy-password")
    assert hasher.verify("legacy-password", stored) is True
    assert hasher.needs_rehash(stored) is True


def test_weaker_argon2_parameters_need_rehash(hasher: PasswordHasher) -> None:
    weak = argon2.using(type="ID", memory_cost=8192, rounds=1, parallelism=1).hash("pw-123")
    assert hasher.verify("pw-123", weak) is True
    assert hasher.needs_rehash(weak) is True


def test_password_over_72_bytes_is_never_truncated(hasher: PasswordHasher) -> None:
    long_password = "p" * 100
    truncated = long_password.encode()[:72]
    stored = bcrypt.hashpw(truncated, bcrypt.gensalt(rounds=4)).decode()
    # control: the 72-byte prefix itself is the password of this hash
    assert hasher.verify(truncated.decode(), stored) is True
    assert hasher.verify(long_password, stored) is False


def test_multibyte_password_over_72_bytes_is_never_truncated(hasher: PasswordHasher) -> None:
    long_password = "é" * 40  # 80 bytes in UTF-8
    stored = bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    assert hasher.verify(long_password, stored) is False


@pytest.mark.parametrize("garbage", ["not-a-password-hash", "", "$unknown$abc$def"])
def test_garbage_stored_hash_is_refused_and_logged(
    hasher: PasswordHasher, caplog: pytest.LogCaptureFixture, garbage: str
) -> None:
    password = "s3cret-Pa55word-in-log?"
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert hasher.verify(password, garbage) is False
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelno for r in records] == [logging.ERROR]
    assert password not in records[0].getMessage()
    assert password not in caplog.text
    assert password not in repr(records[0].args)


def test_oversized_password_is_wrong_not_a_corrupted_hash(
    hasher: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    stored = hasher.hash("short password")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert hasher.verify("p" * 5_000, stored) is False
        assert hasher.verify("p" * 5_000, None) is False
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_unencodable_password_is_wrong_and_never_a_new_hash(
    hasher: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    stored = hasher.hash("short password")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert hasher.verify("\ud800short password", stored) is False
        assert hasher.verify("\udfff", None) is False
    assert not [r for r in caplog.records if r.name == LOGGER]
    with pytest.raises(PasswordPolicyError, match="Unicode"):
        check_password_policy("a long enough password \ud800", 12)


def test_garbage_stored_hash_needs_no_rehash(hasher: PasswordHasher) -> None:
    assert hasher.needs_rehash("not-a-password-hash") is False


@pytest.mark.parametrize("bad", ["", None, b"bytes-password", 123])
def test_hash_refuses_empty_or_non_string(hasher: PasswordHasher, bad: object) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        hasher.hash(bad)  # type: ignore[arg-type]
