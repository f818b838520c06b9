"""API keys in a request header, checked against their stored hashes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed
from ..identity import Identity
from .ratelimit import FailureLimiter

#: ``key -> login``, or ``None`` for an unknown, revoked or disabled key (the user store's)
KeyChecker = Callable[[str], "str | None"]


_API_KEYS = "\x00api keys"


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
        # stays bounded and floods of bad keys are answered 429 (ASVS 2.2.1). They count under
        # a name no login can have (not printable), apart from every user's failures.
        address = request.remote_addr
        limiter = self._limiter
        attempt = limiter.attempt(_API_KEYS, address) if limiter is not None else None
        with attempt or contextlib.nullcontext():
            login = self._check(values[0]) if len(values) == 1 and len(values[0]) <= 200 else None
            if login is None:
                if attempt is not None:
                    attempt.failed()
                raise AuthenticationFailed("apikey: invalid, revoked or disabled key")
        return Identity(login=login, scheme=self.name)
