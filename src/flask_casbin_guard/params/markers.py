"""``Annotated`` markers naming where a parameter comes from, and injectable special types.

def view(token: Annotated[str, Header("X-Token")], page: Annotated[int, Query()] = 1): ...
"""

from __future__ import annotations

from typing import ClassVar, NewType

#: the authenticated login, injected by type (``user: CurrentUser``)
CurrentUser = NewType("CurrentUser", str)


class Marker:
    """Where a parameter is read from; ``alias`` is its name in the request."""

    source: ClassVar[str] = ""

    def __init__(self, alias: str | None = None) -> None:
        if alias is not None and (not isinstance(alias, str) or not alias):
            raise TypeError(f"{type(self).__name__} alias must be a non-empty string")
        self.alias = alias

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.alias!r})" if self.alias else f"{type(self).__name__}()"
        )


class Param(Marker):
    """The default sources (JSON field, form, query) under another name: ``Param("login")``."""

    source = "auto"


class Path(Marker):
    """A variable of the URL rule (the default for names in the rule)."""

    source = "path"


class Query(Marker):
    """The query string only."""

    source = "query"


class Form(Marker):
    """Form fields only (urlencoded or multipart)."""

    source = "form"


class Json(Marker):
    """A field of the JSON body's top-level object only."""

    source = "json"


class Body(Marker):
    """The whole JSON document."""

    source = "body"


class Header(Marker):
    """A request header; by default the parameter name with ``_`` as ``-`` (``x_token``)."""

    source = "header"


class Cookie(Marker):
    """A cookie."""

    source = "cookie"


class File(Marker):
    """An uploaded file (``FileStorage``, or ``list[FileStorage]`` for several)."""

    source = "file"
