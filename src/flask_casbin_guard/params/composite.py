"""Build a :class:`Converter` for any supported annotation, recursively, at registration."""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from .converters import (
    ABSENT,
    SCALARS,
    STANDARD,
    Converter,
    Invalid,
    enum_converter,
    literal_converter,
    subclass_converter,
    text_via_json,
)


class Unsupported(TypeError):
    """The annotation cannot be converted; the message says why."""


def build_converter(hint: Any, custom: Mapping[Any, Converter] | None = None) -> Converter:
    """The converter for ``hint`` (``Annotated`` constraints applied).

    :param custom: converters registered by type; they win over the built-in ones.
    :raises Unsupported: for annotations no converter handles.
    """
    return _Builder(custom or {}).build(hint)


def unwrap(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, *meta]`` -> ``(T, meta)``; anything else -> ``(hint, ())``."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        inner, more = unwrap(base)
        return inner, (*more, *meta)
    return hint, ()


def split_optional(hint: Any) -> tuple[Any, bool]:
    """``T | None`` -> ``(T, True)``; other unions are unsupported."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) != 1:
            raise Unsupported("unions other than 'T | None' are not supported")
        return members[0], len(members) < len(typing.get_args(hint))
    return hint, False


class _Builder:
    def __init__(self, custom: Mapping[Any, Converter]) -> None:
        self.custom = custom
        self.building: set[Any] = set()  # recursive dataclasses are refused, not looped on

    def build(self, hint: Any) -> Converter:
        hint, meta = unwrap(hint)
        hint, nullable = split_optional(hint)
        hint, more = unwrap(hint)
        converter = self._base(hint)
        checks = [c for c in (_constraint(m) for m in (*meta, *more)) if c is not None]
        if checks:
            converter = _constrained(converter, checks)
        return _nullable(converter) if nullable else converter

    def _base(self, hint: Any) -> Converter:
        if hint in self.custom:
            return self.custom[hint]
        if hint in SCALARS:
            return SCALARS[hint]
        if hint in STANDARD:
            return STANDARD[hint]
        if hint is Any:
            return Converter(Any, "any value", lambda raw: raw, lambda raw: raw)
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            return literal_converter(hint, typing.get_args(hint))
        if origin is list:
            (item,) = typing.get_args(hint) or (Any,)
            return _list(self.build(item))
        if origin is dict:
            key, value = typing.get_args(hint) or (str, Any)
            if key is not str:
                raise Unsupported("dict keys must be str")
            return _dict(self.build(value))
        if not isinstance(hint, type):
            raise Unsupported(f"unsupported type {hint!r}")
        if issubclass(hint, enum.Enum):
            return enum_converter(hint)
        if dataclasses.is_dataclass(hint):
            return self._dataclass(hint)
        # pydantic is optional and costs ~8 MiB to import: a model class means it is loaded.
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and issubclass(hint, pydantic.BaseModel):
            return _pydantic(hint, pydantic.ValidationError)
        for base in (*SCALARS, *STANDARD):
            if issubclass(hint, base) and base is not bool:
                return subclass_converter(hint, (SCALARS | STANDARD)[base])
        raise Unsupported(f"unsupported type {hint.__name__!r}: register a converter for it")

    def _dataclass(self, kind: type) -> Converter:
        if kind in self.building:
            raise Unsupported(f"recursive dataclass {kind.__name__!r}")
        self.building.add(kind)
        try:
            hints = typing.get_type_hints(kind, include_extras=True)
            members = {
                f.name: (self.build(hints[f.name]), f) for f in dataclasses.fields(kind) if f.init
            }
        except NameError as error:
            raise Unsupported(f"cannot resolve the fields of {kind.__name__!r}: {error}") from None
        finally:
            self.building.discard(kind)
        expected = f"a {kind.__name__} object"

        def from_json(raw: Any) -> Any:
            if not isinstance(raw, dict):
                raise Invalid.one(expected, raw)
            values: dict[str, Any] = {}
            problems: list[tuple[tuple[str | int, ...], str, Any]] = []
            for name, (converter, spec) in members.items():
                if name in raw:
                    try:
                        values[name] = converter.from_json(raw[name])
                    except Invalid as error:
                        problems.extend(error.inside(name).problems)
                elif _has_default(spec):
                    continue
                else:
                    problems.append(((name,), converter.expected, ABSENT))
            if problems:
                raise Invalid(problems)
            try:
                return kind(**values)
            except (ValueError, TypeError) as error:  # __post_init__ validation
                raise Invalid.one(f"a valid {kind.__name__}: {error}", raw) from None

        return text_via_json(kind, expected, from_json)


def _has_default(spec: dataclasses.Field[Any]) -> bool:
    return (
        spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING
    )


def _nullable(inner: Converter) -> Converter:
    def from_json(raw: Any) -> Any:
        return None if raw is None else inner.from_json(raw)

    return dataclasses.replace(inner, expected=inner.expected + " or null", from_json=from_json)


def _list(item: Converter) -> Converter:
    expected = f"a list of: {item.expected}"

    def from_json(raw: Any) -> list[Any]:
        if not isinstance(raw, list):
            raise Invalid.one(expected, raw)
        return _each(raw, item.from_json)

    def from_texts(raws: list[str]) -> list[Any]:
        return _each(raws, item.from_text)

    return Converter(list, expected, lambda raw: from_texts([raw]), from_json, True, from_texts)


def _each(raws: list[Any], convert: Callable[[Any], Any]) -> list[Any]:
    values, problems = [], []
    for index, raw in enumerate(raws):
        try:
            values.append(convert(raw))
        except Invalid as error:
            problems.extend(error.inside(index).problems)
    if problems:
        raise Invalid(problems)
    return values


def _dict(value: Converter) -> Converter:
    expected = f"an object of: {value.expected}"

    def from_json(raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise Invalid.one(expected, raw)
        result, problems = {}, []
        for key, item in raw.items():
            try:
                result[key] = value.from_json(item)
            except Invalid as error:
                problems.extend(error.inside(key).problems)
        if problems:
            raise Invalid(problems)
        return result

    return text_via_json(dict, expected, from_json)


def _pydantic(model: Any, validation_error: Any) -> Converter:
    expected = f"a {model.__name__} object"

    def from_json(raw: Any) -> Any:
        try:
            return model.model_validate(raw)
        except validation_error as error:
            raise Invalid(
                [(tuple(e["loc"]), e["msg"], e.get("input")) for e in error.errors()]
            ) from None

    return text_via_json(model, expected, from_json)


_BOUNDS: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
    ("gt", ">", lambda v, b: v > b),
    ("ge", ">=", lambda v, b: v >= b),
    ("lt", "<", lambda v, b: v < b),
    ("le", "<=", lambda v, b: v <= b),
    ("multiple_of", "a multiple of", lambda v, b: v % b == 0),
    ("min_length", "length >=", lambda v, b: len(v) >= b),
    ("max_length", "length <=", lambda v, b: len(v) <= b),
)

Check = tuple[str, Callable[[Any], bool]]


def _constraint(meta: Any) -> list[Check] | None:
    """Checks from ``annotated_types`` objects (Gt, Le, MinLen, Interval...) or a regex."""
    if isinstance(meta, re.Pattern):
        pattern = meta
        return [(f"text matching {pattern.pattern!r}", lambda v: bool(pattern.fullmatch(v)))]
    checks: list[Check] = []
    for attr, word, test in _BOUNDS:
        bound = getattr(meta, attr, None)
        if bound is not None and not callable(bound):
            checks.append((f"{word} {bound}", functools.partial(_bounded, test, bound)))
    return checks or None


def _bounded(test: Callable[[Any, Any], bool], bound: Any, value: Any) -> bool:
    return test(value, bound)


def _constrained(inner: Converter, groups: list[list[Check]]) -> Converter:
    checks = [check for group in groups for check in group]
    expected = inner.expected + " (" + ", ".join(word for word, _ in checks) + ")"

    def verify(value: Any, raw: Any) -> Any:
        for _, test in checks:
            try:
                ok = test(value)
            except TypeError:
                ok = False
            if not ok:
                raise Invalid.one(expected, raw)
        return value

    def from_texts(raws: list[str]) -> Any:
        assert inner.from_texts is not None  # noqa: S101 - only set for multi converters
        return verify(inner.from_texts(raws), raws)

    return Converter(
        inner.type,
        expected,
        lambda raw: verify(inner.from_text(raw), raw),
        lambda raw: verify(inner.from_json(raw), raw),
        inner.multi,
        from_texts if inner.multi else None,
    )
