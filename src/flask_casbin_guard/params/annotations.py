"""Resolve a view's parameter annotations where the view was written, once, at registration.

``typing.get_type_hints`` sees only a function's module globals and insists on resolving the
return annotation too, which binding never uses: ``-> Response`` imported under
``TYPE_CHECKING`` or a dataclass defined inside an app factory (with ``from __future__ import
annotations``) would then refuse a view whose parameters are all fine.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigurationError

#: modules between the user's code and the guard's compiler (route decorators, blueprints)
_LIBRARIES = ("flask", "werkzeug", "flask_casbin_guard")


def caller_namespace() -> dict[str, Any]:
    """The local names of the first frame outside Flask and the guard: the user's code.

    Called when a decorator or ``add_url_rule`` runs, so that annotations naming classes local
    to an app factory resolve. A class body (a method decorated in it) adds the names of the
    function around the class.
    """
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and _is_library(frame):
        frame = frame.f_back
    if frame is None or frame.f_locals is frame.f_globals:
        return {}  # module level: the view's own globals say the same
    found = dict(frame.f_locals)
    outer = frame.f_back
    if _is_class_body(frame) and outer is not None and outer.f_locals is not outer.f_globals:
        found = {**outer.f_locals, **found}
    return found


def _is_library(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return any(module == name or module.startswith(f"{name}.") for name in _LIBRARIES)


def _is_class_body(frame: types.FrameType) -> bool:
    qualname = frame.f_locals.get("__qualname__")
    return isinstance(qualname, str) and qualname.rsplit(".", 1)[-1] == frame.f_code.co_name


def resolve_hints(
    view: Callable[..., Any],
    parameters: Mapping[str, inspect.Parameter],
    endpoint: str,
    namespace: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Each annotated parameter's type, ``Annotated`` extras kept; the return is ignored.

    Names are looked up in ``namespace`` (captured where the view was declared), the view's
    closure, then its module globals, as Python would have at the ``def``.

    :raises ConfigurationError: naming ``endpoint``, the parameter and the annotation.
    """
    target = inspect.unwrap(view)
    globalns: dict[str, Any] = getattr(target, "__globals__", {})
    localns = dict(namespace or {})
    code = getattr(target, "__code__", None)
    cells = getattr(target, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars if code else (), cells, strict=False):
        try:
            localns[name] = cell.cell_contents
        except ValueError:  # a cell not filled yet (a name assigned after the def)
            continue
    hints: dict[str, Any] = {}
    for name, param in parameters.items():
        if param.annotation is param.empty:
            continue
        holder = types.SimpleNamespace(__annotations__={name: param.annotation})
        try:
            hints[name] = typing.get_type_hints(holder, globalns, localns, include_extras=True)[
                name
            ]
        except Exception as error:  # NameError, SyntaxError, TypeError from user annotations
            raise ConfigurationError(
                f"endpoint {endpoint!r}: parameter {name!r}: cannot resolve its annotation "
                f"{param.annotation!r}: {error}"
            ) from error
    return hints
