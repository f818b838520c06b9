"""Test-only authentication: the login is taken from a header, without any secret.

Refused at configuration unless the app is in testing mode, and checked again per request:
an ``assert`` would vanish under ``python -O`` (FlaskSimpleAuth's gap).
"""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed, ConfigurationError
from ..identity import Identity, is_safe_login


class FakeScheme:
    """``X-Fake-User: alice`` authenticates as ``alice`` in tests."""

    name = "fake"

    def __init__(self, testing: Callable[[], bool], header: str = "X-Fake-User") -> None:
        if not testing():
            raise ConfigurationError("the 'fake' scheme is only allowed when app.testing is true")
        self._testing = testing
        self._header = header

    def challenge(self) -> None:
        return None

    def authenticate(self, request: Request) -> Identity | None:
        login = request.headers.get(self._header)
        if login is None:
            return None
        if not self._testing():
            raise AuthenticationFailed("fake: app is not in testing mode")
        if not is_safe_login(login):
            raise AuthenticationFailed("fake: unusable login")
        return Identity(login=login, scheme=self.name)
