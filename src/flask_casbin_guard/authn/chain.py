"""Ordered resolution over the enabled schemes."""

from __future__ import annotations

from collections.abc import Sequence

from werkzeug.wrappers import Request

from ..errors import PolicyError, PolicyUnavailable
from ..identity import Identity
from .base import Scheme


class AuthChain:
    """Tries each scheme in ``GUARD_AUTH`` order; the first identity wins.

    A scheme that recognises its credentials but finds them invalid raises, and the chain lets
    that stand rather than falling through to the next scheme: bad credentials are a 401, never
    an anonymous request.
    """

    def __init__(self, schemes: Sequence[Scheme]) -> None:
        self.schemes: tuple[Scheme, ...] = tuple(schemes)
        self.challenges: tuple[str, ...] = tuple(
            c for c in (s.challenge() for s in self.schemes) if c
        )
        self.names = frozenset(s.name for s in self.schemes)

    def authenticate(self, request: Request, only: frozenset[str] | None = None) -> Identity | None:
        """The first identity; ``only`` restricts the schemes tried (a route's ``authn=``)."""
        for scheme in self.schemes:
            if only is not None and scheme.name not in only:
                continue
            try:
                identity = scheme.authenticate(request)
            except PolicyError as error:
                # The user store cannot be read (a database outage): this request is a 503,
                # never a 500 and never anonymous.
                raise PolicyUnavailable(f"{scheme.name}: {error}") from None
            if identity is not None:
                return identity
        return None

    def get(self, name: str) -> Scheme | None:
        return next((s for s in self.schemes if s.name == name), None)
