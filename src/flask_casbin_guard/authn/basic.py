"""HTTP Basic authentication against hashed passwords."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed
from ..identity import Identity
from .base import quote_realm
from .credentials import PasswordChecker, Rehasher
from .passwords import DEFAULT_MAX_PASSWORD_LENGTH, PasswordHasher
from .ratelimit import FailureLimiter
from .verified import VerifiedPasswords


class BasicScheme:
    """``Authorization: Basic base64(login:password)`` checked with :class:`PasswordHasher`.

    :param verified: recent successes (``GUARD_BASIC_CACHE_SECONDS``), checked against
        ``stamp`` (``login -> revocation stamp``): a client sends its password with every
        request, and verifying each one would cost an argon2id hash per request.
    """

    name = "basic"

    def __init__(
        self,
        get_user_pass: Callable[[str], str | None],
        hasher: PasswordHasher,
        realm: str,
        *,
        limiter: FailureLimiter | None = None,
        rehash: Rehasher | None = None,
        max_length: int = DEFAULT_MAX_PASSWORD_LENGTH,
        verified: VerifiedPasswords | None = None,
        stamp: Callable[[str], float | None] | None = None,
    ) -> None:
        self._checker = PasswordChecker(
            get_user_pass, hasher, limiter, rehash, max_length, verified, stamp
        )
        self._challenge = f'Basic realm={quote_realm(realm)}, charset="UTF-8"'

    def challenge(self) -> str:
        return self._challenge

    def authenticate(self, request: Request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return None
        login, password = _decode(value.strip())
        return self._checker.check(login, password, self.name, request.remote_addr)


def _decode(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed("basic: malformed credentials") from None
    login, colon, password = decoded.partition(":")
    if not colon or not login or not password:
        raise AuthenticationFailed("basic: malformed credentials")
    return login, password
