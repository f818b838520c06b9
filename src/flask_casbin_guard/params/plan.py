"""Compile a view's signature into a frozen :class:`BindingPlan`, once, at registration."""

from __future__ import annotations

import inspect
import typing
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from werkzeug.datastructures import FileStorage

from ..errors import ConfigurationError
from .annotations import resolve_hints
from .composite import Unsupported, build_converter, split_optional, unwrap
from .converters import SCALARS, STANDARD, Converter
from .markers import Marker


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: marks a parameter without a default (required)
MISSING: Any = _Missing()

#: werkzeug converter -> the annotation its values need (others accept any text converter)
_RULE_TYPES = {"IntegerConverter": int, "FloatConverter": float, "UUIDConverter": uuid.UUID}
_FILE = Converter(FileStorage, "an uploaded file", lambda raw: raw, lambda raw: raw)


class Resolver(Protocol):
    """What the guard lends the compiler: custom converters and injected values."""

    @property
    def converters(self) -> Mapping[Any, Converter]:
        """Converters registered by type, consulted at every level (``list[Money]``)."""
        ...

    def provider_for(self, hint: Any) -> Provider | None: ...


@dataclass(frozen=True, slots=True)
class Provider:
    """An injected value: ``factory()`` is called per request (inside its context)."""

    factory: Callable[[], Any]
    #: the value is the authenticated user, so an OPEN route cannot require it
    needs_user: bool = False


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One view parameter: where to find it and how to convert it."""

    name: str
    converter: Converter
    default: Any = MISSING
    #: ``T | None``: JSON ``null`` (and empty text) give ``None``
    nullable: bool = False
    #: the view annotated it; unannotated path values keep what Flask's converter made
    annotated: bool = True
    #: ``auto`` (path if in the rule, else JSON field, form, query), or a marker's source
    source: str = "auto"
    #: its name in the request (alias; ``class_`` is read as ``class``)
    key: str = ""
    provider: Provider | None = None


@dataclass(frozen=True, slots=True)
class BindingPlan:
    """Everything the binder needs for one view; request code never calls ``inspect``."""

    params: tuple[ParamSpec, ...]
    names: frozenset[str]
    #: the view takes ``**kwargs``: remaining values are passed through
    var_keyword: bool
    #: unexpected query/form/JSON keys are errors
    strict: bool = False
    #: request keys the parameters consume (for strict mode and ``**kwargs``)
    keys: frozenset[str] = frozenset()


def compile_plan(
    view: Callable[..., Any],
    endpoint: str,
    path_params: Collection[str] | None = None,
    *,
    resolver: Resolver | None = None,
    strict: bool = False,
    rule_converters: Mapping[str, str] | None = None,
    namespace: Mapping[str, Any] | None = None,
    method: bool = False,
) -> BindingPlan:
    """Read ``view``'s signature and parameter annotations (its return annotation is ignored).

    :param path_params: the rule's variables when the rule is known, checked against the
        signature so a mismatch fails here rather than on the first request.
    :param rule_converters: rule variable -> werkzeug converter class name, to refuse
        ``<int:x>`` with ``x: str``.
    :param namespace: names visible where the view was declared (an app factory's locals).
    :param method: ``view`` is a class-based view's method: its first parameter is ``self``.
    :raises ConfigurationError: naming ``endpoint`` and the parameter at fault.
    """
    parameters = dict(inspect.signature(view).parameters)
    if method and parameters:
        del parameters[next(iter(parameters))]
    hints = resolve_hints(view, parameters, endpoint, namespace)
    specs: list[ParamSpec] = []
    var_keyword = False
    for param in parameters.values():
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
            raise ConfigurationError(
                f"endpoint {endpoint!r}: parameter {param.name!r} must be passable by keyword"
            )
        where = f"endpoint {endpoint!r}: parameter {param.name!r}"
        try:
            spec = _spec(param, hints.get(param.name), resolver, path_params)
        except (Unsupported, TypeError, ValueError) as error:
            raise ConfigurationError(f"{where}: {error}") from None
        _check_rule_converter(spec, where, (rule_converters or {}).get(param.name))
        specs.append(spec)
    keys = frozenset(s.key for s in specs if s.source in ("auto", "query", "form", "json"))
    plan = BindingPlan(tuple(specs), frozenset(s.name for s in specs), var_keyword, strict, keys)
    if path_params is not None:
        check_path_params(plan, endpoint, path_params)
    return plan


def check_path_params(plan: BindingPlan, endpoint: str, path_params: Collection[str]) -> None:
    """Every rule variable must be a parameter of the view (or land in ``**kwargs``)."""
    missing = sorted(set(path_params) - plan.names)
    if missing and not plan.var_keyword:
        raise ConfigurationError(
            f"endpoint {endpoint!r}: path parameter {missing[0]!r} is not a parameter of its view"
        )
    for spec in plan.params:
        if spec.source == "path" and spec.name not in path_params:
            raise ConfigurationError(
                f"endpoint {endpoint!r}: parameter {spec.name!r} is marked Path() "
                "but is not a variable of the rule"
            )


def _spec(
    param: inspect.Parameter,
    hint: Any,
    resolver: Resolver | None,
    path_params: Collection[str] | None,
) -> ParamSpec:
    default = MISSING if param.default is param.empty else param.default
    if hint is None:
        return ParamSpec(
            param.name,
            SCALARS[str],
            default,
            False,
            False,
            _source(param, None, path_params),
            _key(param.name, None, None),
        )
    base, meta = unwrap(hint)
    inner, nullable = split_optional(base)
    inner, _ = unwrap(inner)
    markers = [m() if isinstance(m, type) and issubclass(m, Marker) else m for m in meta]
    markers = [m for m in markers if isinstance(m, Marker)]
    if len(markers) > 1:
        raise TypeError(f"several source markers {markers}")
    marker = markers[0] if markers else None
    provider = resolver.provider_for(inner) if resolver is not None else None
    if provider is not None:
        if marker is not None:
            raise TypeError(f"an injected {getattr(inner, '__name__', inner)} takes no {marker!r}")
        return ParamSpec(
            param.name, _FILE, default, nullable, True, "provided", param.name, provider
        )
    if _is_file(inner) and (marker is None or marker.source == "file"):
        converter = _file_converter(inner)
        source = "file"
    else:
        if marker is not None and marker.source == "file":
            raise TypeError("File() needs a FileStorage or list[FileStorage] annotation")
        converter = build_converter(hint, resolver.converters if resolver is not None else None)
        source = _source(param, marker, path_params)
    if default is None and not nullable:
        name = getattr(inner, "__name__", repr(inner))
        raise TypeError(f"defaults to None, so annotate it '{name} | None'")
    _check_default(default, inner)
    return ParamSpec(
        param.name, converter, default, nullable, True, source, _key(param.name, marker, source)
    )


def _source(param: inspect.Parameter, marker: Marker | None, path: Collection[str] | None) -> str:
    in_rule = path is not None and param.name in path
    if marker is None or (marker.source == "auto" and not in_rule):
        return "path" if in_rule else "auto"
    if in_rule and marker.source != "path":
        raise TypeError(f"is a variable of the rule, so it cannot be {marker!r}")
    return marker.source


def _key(name: str, marker: Marker | None, source: str | None) -> str:
    if marker is not None and marker.alias:
        return marker.alias
    # ``class_`` stands for ``class``: a trailing underscore dodges Python keywords.
    key = name[:-1] if name.endswith("_") and len(name) > 1 else name
    if source == "header":  # x_api_token -> X-Api-Token (header names ignore case anyway)
        return "-".join(part.capitalize() for part in key.split("_"))
    return key


def _is_file(hint: Any) -> bool:
    if typing.get_origin(hint) is list:
        return typing.get_args(hint) == (FileStorage,)
    return hint is FileStorage


def _file_converter(hint: Any) -> Converter:
    if typing.get_origin(hint) is list:
        return Converter(list, "uploaded files", lambda raw: raw, lambda raw: raw, True, list)
    return _FILE


def _check_default(default: Any, hint: Any) -> None:
    """A default of the wrong type is a bug waiting for the request that omits the value."""
    if default is MISSING or default is None:
        return
    for kind in (*SCALARS, *STANDARD):
        if hint is kind and not (
            isinstance(default, kind) and (kind is bool or not isinstance(default, bool))
        ):
            raise TypeError(f"default {default!r} is not a {kind.__name__}")


def _check_rule_converter(spec: ParamSpec, where: str, converter: str | None) -> None:
    needed = _RULE_TYPES.get(converter or "")
    if needed is None or not spec.annotated or spec.converter.type in (needed, Any):
        return
    raise ConfigurationError(
        f"{where}: the rule converts it to {needed.__name__}, "
        f"but it is annotated {getattr(spec.converter.type, '__name__', spec.converter.type)}"
    )
