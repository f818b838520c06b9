"""The contract every authentication scheme follows."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from werkzeug.wrappers import Request

from ..identity import Identity


@runtime_checkable
class Scheme(Protocol):
    """Resolves the caller from a request.

    ``authenticate`` returns ``None`` when the request carries no credentials of this scheme
    ("not mine": the next scheme is tried), an :class:`Identity` when they are valid, and raises
    :class:`~flask_casbin_guard.errors.AuthenticationFailed` when they are present but invalid.
    The request is passed in explicitly so a scheme can be tested without an app context.
    """

    #: the name used in ``GUARD_AUTH``
    name: str

    def authenticate(self, request: Request) -> Identity | None: ...

    def challenge(self) -> str | None:
        """The ``WWW-Authenticate`` value advertised on 401, or ``None`` for none."""
        ...


def quote_realm(realm: str) -> str:
    """A realm as an RFC 7235 quoted-string (quotes and backslashes escaped)."""
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch for ch in escaped if ch.isprintable()) + '"'
