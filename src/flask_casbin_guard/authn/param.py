"""Login and password sent as request parameters (a form or a JSON body)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed
from ..identity import Identity
from .credentials import PasswordChecker, Rehasher
from .passwords import DEFAULT_MAX_PASSWORD_LENGTH, PasswordHasher
from .ratelimit import FailureLimiter

_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class ParamScheme:
    """``login``/``password`` fields (names configurable) of a form or JSON body.

    Never from the query string: URLs end up in logs, histories and Referer headers.
    """

    name = "param"

    def __init__(
        self,
        get_user_pass: Callable[[str], str | None],
        hasher: PasswordHasher,
        *,
        user_field: str = "login",
        password_field: str = "password",  # noqa: S107 - a field name, not a password
        limiter: FailureLimiter | None = None,
        rehash: Rehasher | None = None,
        max_length: int = DEFAULT_MAX_PASSWORD_LENGTH,
    ) -> None:
        self._checker = PasswordChecker(get_user_pass, hasher, limiter, rehash, max_length)
        self._user, self._password = user_field, password_field

    def challenge(self) -> None:
        return None  # no HTTP challenge exists for form logins

    def authenticate(self, request: Request) -> Identity | None:
        fields = _fields(request)
        if fields is None or self._user not in fields:
            return None
        login, password = fields.get(self._user), fields.get(self._password)
        if not isinstance(login, str) or not isinstance(password, str) or not login or not password:
            raise AuthenticationFailed("param: malformed credentials")
        return self._checker.check(login, password, self.name, request.remote_addr)


def _fields(request: Request) -> dict[str, Any] | None:
    if request.mimetype in _FORM_TYPES:
        form = request.form
        # A repeated field is ambiguous: only single values count.
        return {key: values[0] for key, values in form.lists() if len(values) == 1}
    if request.is_json:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # nesting deeper than the parser goes: not credentials
            return None
        return data if isinstance(data, dict) else None
    return None
