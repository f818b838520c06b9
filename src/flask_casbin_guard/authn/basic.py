"""HTTP Basic authentication against hashed passwords."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed
from ..identity import Identity, is_safe_login
from .base import quote_realm
from .passwords import PasswordHasher


class BasicScheme:
    """``Authorization: Basic base64(login:password)`` checked with :class:`PasswordHasher`."""

    name = "basic"

    def __init__(
        self,
        get_user_pass: Callable[[str], str | None],
        hasher: PasswordHasher,
        realm: str,
    ) -> None:
        self._get_user_pass = get_user_pass
        self._hasher = hasher
        self._challenge = f'Basic realm={quote_realm(realm)}, charset="UTF-8"'

    def challenge(self) -> str:
        return self._challenge

    def authenticate(self, request: Request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return None
        login, password = _decode(value.strip())
        stored = self._get_user_pass(login) if is_safe_login(login) else None
        # Unknown and known logins take the same path (a dummy hash is verified for unknown
        # ones) and raise the same error, so neither the body nor the timing tells them apart.
        if not self._hasher.verify(password, stored):
            raise AuthenticationFailed("basic: invalid login or password")
        return Identity(login=login, scheme=self.name)


def _decode(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed("basic: malformed credentials") from None
    login, colon, password = decoded.partition(":")
    if not colon or not login or not password:
        raise AuthenticationFailed("basic: malformed credentials")
    return login, password
