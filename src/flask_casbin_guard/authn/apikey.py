"""API keys in a request header, checked against their stored hashes."""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed
from ..identity import Identity
from .ratelimit import FailureLimiter

#: ``key -> login``, or ``None`` for an unknown, revoked or disabled key (the user store's)
KeyChecker = Callable[[str], "str | None"]


class ApiKeyScheme:
    """``X-API-Key: gk_<id>_<secret>`` (header name configurable).

    Keys are stored only as hashes and looked up by their id; a key is shown once, when it is
    created (``flask guard apikey create``). Never read from the query string: URLs are logged.
    """

    name = "apikey"

    def __init__(
        self, check: KeyChecker, header: str = "X-API-Key", limiter: FailureLimiter | None = None
    ) -> None:
        self._check = check
        self._header = header
        self._limiter = limiter

    def challenge(self) -> None:
        return None

    def authenticate(self, request: Request) -> Identity | None:
        values = request.headers.getlist(self._header)
        if not values:
            return None
        # Keys are long random secrets, but failures still count per client address: guessing
        # stays bounded and floods of bad keys are answered 429 (ASVS 2.2.1).
        bucket = f"apikey@{request.remote_addr}"
        if self._limiter is not None:
            self._limiter.check(bucket, request.remote_addr)
        login = self._check(values[0]) if len(values) == 1 and len(values[0]) <= 200 else None
        if login is None:
            if self._limiter is not None:
                self._limiter.failed(bucket, request.remote_addr)
            raise AuthenticationFailed("apikey: invalid, revoked or disabled key")
        return Identity(login=login, scheme=self.name)
