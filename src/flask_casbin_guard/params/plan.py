"""Compile a view's signature into a frozen :class:`BindingPlan`, once, at registration."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from .converters import SCALARS, Converter


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: marks a parameter without a default (required)
MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One view parameter: how to find and convert it."""

    name: str
    converter: Converter
    default: Any = MISSING
    #: ``T | None``: JSON ``null`` (and empty text) give ``None``
    nullable: bool = False
    #: the view annotated it; unannotated path values keep what Flask's converter made
    annotated: bool = True


@dataclass(frozen=True, slots=True)
class BindingPlan:
    """Everything the binder needs for one view; request code never calls ``inspect``."""

    params: tuple[ParamSpec, ...]
    names: frozenset[str]
    #: the view takes ``**kwargs``: extra path values are passed through
    var_keyword: bool


def compile_plan(
    view: Callable[..., Any], endpoint: str, path_params: Collection[str] | None = None
) -> BindingPlan:
    """Read ``view``'s signature and annotations.

    :param path_params: the rule's variables when the rule is known, checked against the
        signature so a mismatch fails here rather than on the first request.
    :raises ConfigurationError: naming ``endpoint`` and the parameter at fault.
    """
    signature = inspect.signature(view)
    try:
        hints = typing.get_type_hints(view, include_extras=True)
    except Exception as error:  # NameError, TypeError... from the user's annotations
        raise ConfigurationError(
            f"endpoint {endpoint!r}: cannot resolve the annotations of its view: {error}"
        ) from error
    specs: list[ParamSpec] = []
    var_keyword = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
            raise ConfigurationError(
                f"endpoint {endpoint!r}: parameter {param.name!r} must be passable by keyword"
            )
        specs.append(_spec(endpoint, param, hints.get(param.name)))
    plan = BindingPlan(tuple(specs), frozenset(s.name for s in specs), var_keyword)
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


def _unannotated(hint: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T``; anything else unchanged."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint


def _spec(endpoint: str, param: inspect.Parameter, hint: Any) -> ParamSpec:
    annotated = hint is not None
    hint = str if hint is None else hint
    nullable = False
    hint = _unannotated(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [_unannotated(a) for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(hint))
        if len(members) != 1:
            raise ConfigurationError(
                f"endpoint {endpoint!r}: parameter {param.name!r}: unions other than "
                "'T | None' are not supported"
            )
        hint = members[0]
    converter = SCALARS.get(hint) if isinstance(hint, type) else None
    if converter is None:
        raise ConfigurationError(
            f"endpoint {endpoint!r}: parameter {param.name!r}: unsupported type {hint!r} "
            f"(supported: {', '.join(t.__name__ for t in SCALARS)}, optionally '| None')"
        )
    default = MISSING if param.default is param.empty else param.default
    if default is None and not nullable:
        raise ConfigurationError(
            f"endpoint {endpoint!r}: parameter {param.name!r} defaults to None, "
            f"so annotate it '{hint.__name__} | None'"
        )
    return ParamSpec(param.name, converter, default, nullable, annotated)
