"""Password hashing with libpass: argon2id for new hashes, legacy schemes verified."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from passlib.context import CryptContext
from passlib.exc import PasswordSizeError, UnknownHashError

from ..errors import PasswordPolicyError

log = logging.getLogger("flask_casbin_guard.passwords")

#: OWASP Password Storage Cheat Sheet / ASVS 5.0 appendix C: m=19 MiB, t=2, p=1.
ARGON2_PARAMS = {"memory_cost": 19456, "rounds": 2, "parallelism": 1}

#: Verified so existing user bases keep working; each is rehashed to argon2id on login.
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$", "$2x$")
_BCRYPT_MAX_BYTES = 72

LEGACY_SCHEMES = ("bcrypt", "pbkdf2_sha256", "pbkdf2_sha512", "sha512_crypt", "sha256_crypt")


#: longest password accepted by default (``GUARD_PASSWORD_MAX_LENGTH``, ASVS 4.0.3 2.1.2):
#: long enough for any passphrase, short enough that no hash costs much more than usual
DEFAULT_MAX_PASSWORD_LENGTH = 128
#: the highest value ``GUARD_PASSWORD_MAX_LENGTH`` may take
MAX_PASSWORD_LENGTH = 4096
#: what a refused over-long password is verified as, against the dummy hash: any fixed text
#: does, so that its refusal costs what an unknown login's does
_STAND_IN = "over-long password stand-in"


def check_password_policy(
    password: str,
    min_length: int,
    extra: Callable[[str], str | None] | None = None,
    max_length: int = DEFAULT_MAX_PASSWORD_LENGTH,
) -> None:
    """Refuse passwords a new hash must not be made of (ASVS 5.0 6.2.1, 6.2.9, 6.2.12).

    No composition rules (ASVS 6.2.5): length, and the app's own check (e.g. breached lists).

    :raises PasswordPolicyError: saying what is wrong, never repeating the password.
    """
    if not isinstance(password, str) or len(password) < min_length:
        raise PasswordPolicyError(f"a password needs at least {min_length} characters")
    if len(password) > max_length:
        raise PasswordPolicyError(f"a password has at most {max_length} characters")
    if not _encodable(password):
        raise PasswordPolicyError("a password must be valid Unicode text (no lone surrogates)")
    problem = extra(password) if extra is not None else None
    if problem:
        raise PasswordPolicyError(problem)


class PasswordHasher:
    """Hashes and verifies passwords; verifies a dummy hash for unknown users.

    Checking an unknown login against a real hash of the default scheme makes "no such user"
    cost as much as "wrong password", so response times do not reveal which logins exist.
    """

    def __init__(self) -> None:
        self.context = CryptContext(
            schemes=["argon2", *LEGACY_SCHEMES],
            default="argon2",
            deprecated="auto",
            argon2__type="ID",
            **{f"argon2__{key}": value for key, value in ARGON2_PARAMS.items()},
        )
        self._dummy: str | None = None
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        """A new argon2id hash of ``password``."""
        if not isinstance(password, str) or not password:
            raise ValueError("a password must be a non-empty string")
        return str(self.context.hash(password))

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` uses a legacy scheme or weaker parameters than today's."""
        try:
            return bool(self.context.needs_update(stored))
        except (ValueError, TypeError):
            return False

    def verify(self, password: str, stored: str | None) -> bool:
        """Whether ``password`` matches ``stored``; ``None`` (unknown user) is always False."""
        if stored is None:
            self._check(password, self._dummy_hash())
            return False
        return self._check(password, stored)

    def refuse(self) -> bool:
        """Verify the dummy hash and answer ``False``: a wrong password refused before its
        own check (too long) costs what an unknown login costs, and no more."""
        self._check(_STAND_IN, self._dummy_hash())
        return False

    def _check(self, password: str, stored: str) -> bool:
        if not _encodable(password):
            # A lone surrogate (JSON "\ud800") is nobody's password: a wrong one, decided
            # before any hash is read, so it cannot pass for a corrupted stored hash below.
            return False
        if stored.startswith(_BCRYPT_PREFIXES) and len(password.encode()) > _BCRYPT_MAX_BYTES:
            # bcrypt < 5 silently ignores bytes past 72: such a password was never fully
            # checked, whatever bcrypt version is installed, so it never matches.
            return False
        try:
            return bool(self.context.verify(password, stored))
        except PasswordSizeError:
            # The client's password is longer than passlib hashes: a wrong password, not a
            # corrupted hash (anyone could otherwise raise that alarm at will).
            return False
        except UnknownHashError:
            log.error("a stored password hash has an unknown format; the login is refused")
            return False
        except ValueError:
            # A known scheme but a malformed hash: refuse, and say so once per occurrence
            # (never with the password), so corrupted stored hashes get noticed.
            log.error("a stored password hash is malformed; the login is refused")
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            with self._lock:
                if self._dummy is None:
                    self._dummy = self.hash("dummy password used to equalise timing")
        return self._dummy


def _encodable(password: str) -> bool:
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
