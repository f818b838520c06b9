"""Routes that exist only with an authentication scheme (``/auth/logout`` needs ``session``).

A blueprint cannot leave such routes out when it is registered: subclass mode reads
``GUARD_AUTH`` lazily, after app factories have registered their blueprints. So the routes are
always registered, marked with the schemes they need; while one of those is not enabled they
answer 404, and configuration checks do not count them as routes naming a disabled scheme
(they are not there to be served).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

_MARK = "__guard_only_with__"

_View = TypeVar("_View", bound=Callable[..., Any])


def only_with(*schemes: str) -> Callable[[_View], _View]:
    """Mark a view as existing only while ``GUARD_AUTH`` enables every one of ``schemes``.

    The mark is in the function's ``__dict__``, which the guard's wrapper copies: it stays on
    the route whichever wrapper Flask ends up calling.
    """

    def mark(view: _View) -> _View:
        view.__dict__[_MARK] = frozenset(schemes)
        return view

    return mark


def needed_schemes(view: object) -> frozenset[str]:
    """The schemes ``view`` needs to exist (empty for an ordinary route)."""
    found = getattr(view, _MARK, None)
    return found if isinstance(found, frozenset) else frozenset()


def absent(view: object, enabled: Iterable[str]) -> bool:
    """Whether ``view`` is a route that does not exist under the ``enabled`` schemes."""
    return not needed_schemes(view) <= frozenset(enabled)
