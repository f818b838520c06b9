"""Type aliases shared across layers. Imports nothing from the package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

#: a Flask view function, as registered
ViewFunc: TypeAlias = Callable[..., Any]

#: ``login -> stored password hash or None``
PasswordGetter: TypeAlias = Callable[[str], "str | None"]

#: ``converted parameter value -> domain object or None`` (``None`` answers 404)
ObjectLoader: TypeAlias = Callable[[Any], Any]
