"""Converters: text (path, query, form, headers) and JSON values to Python values.

A converter raises :class:`Invalid` (a ``ValueError``) naming what it expected; structured
converters (lists, dataclasses, pydantic models) collect their members' problems with a location
so one 400 can list them all.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_INT_RE = re.compile(r"[+-]?[0-9]{1,64}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]{1,64}(\.[0-9]{0,64})?|\.[0-9]{1,64})([eE][+-]?[0-9]{1,4})?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
#: longest text we try to parse as a date, number or UUID; longer is simply invalid
_MAX_SCALAR_TEXT = 100


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


#: the "received" value of a problem about something missing
ABSENT: Any = _Absent()


class Invalid(ValueError):
    """A value does not convert; ``problems`` lists ``(location, expected, received)``."""

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str, Any]]) -> None:
        super().__init__(problems[0][1] if problems else "invalid")
        self.problems = list(problems)

    @classmethod
    def one(cls, expected: str, received: Any) -> Invalid:
        return cls([((), expected, received)])

    def inside(self, location: str | int) -> Invalid:
        """The same problems, one level deeper (``item`` -> ``items[2].item``)."""
        return Invalid([((location, *loc), exp, got) for loc, exp, got in self.problems])


@dataclass(frozen=True, slots=True)
class Converter:
    """How to read one type from text and from JSON; both raise ``ValueError``."""

    type: Any
    #: what a valid value looks like, in words, for 400 details
    expected: str
    from_text: Callable[[str], Any]
    from_json: Callable[[Any], Any]
    #: takes every value of a repeated key (``list[T]``) through ``from_texts``
    multi: bool = False
    from_texts: Callable[[list[str]], Any] | None = field(default=None)


def text_via_json(kind: Any, expected: str, from_json: Callable[[Any], Any]) -> Converter:
    """A converter for structured values: text is parsed as JSON first (``?item={...}``)."""
    import json

    def from_text(raw: str) -> Any:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # nesting deeper than the parser goes
            raise Invalid.one(expected, raw) from None
        return from_json(data)

    return Converter(kind, expected, from_text, from_json)


def _checked(expected: str, parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Turn any ValueError/TypeError/OverflowError of ``parse`` into :class:`Invalid`."""

    def convert(raw: Any) -> Any:
        try:
            return parse(raw)
        except Invalid:
            raise
        except (ValueError, TypeError, OverflowError, ArithmeticError, LookupError):
            raise Invalid.one(expected, raw) from None

    return convert


def _int_text(raw: str) -> int:
    # int() alone would accept "1_000", " 7 " and non-ASCII digits.
    if not _INT_RE.fullmatch(raw):
        raise ValueError(raw)
    return int(raw)


def _int_json(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(raw)
    return raw


def _float_text(raw: str) -> float:
    if not _FLOAT_RE.fullmatch(raw):
        raise ValueError(raw)
    return _finite(float(raw))


def _float_json(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(raw)
    return _finite(float(raw))  # OverflowError for huge JSON integers: invalid too


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(value)
    return value


def _bool_text(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(raw)


def _exact(kind: type) -> Callable[[Any], Any]:
    def check(raw: Any) -> Any:
        if type(raw) is not kind:
            raise ValueError(raw)
        return raw

    return check


def _decimal_text(raw: str) -> Decimal:
    if not _FLOAT_RE.fullmatch(raw):
        raise ValueError(raw)
    value = Decimal(raw)
    if not value.is_finite():
        raise ValueError(raw)
    return value


def _decimal_json(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(raw)
    # A JSON float went through binary floating point already: str() keeps its shortest form.
    return _decimal_text(str(raw)) if not isinstance(raw, str) else _decimal_text(raw)


def _uuid_text(raw: str) -> uuid.UUID:
    if not _UUID_RE.fullmatch(raw):
        raise ValueError(raw)
    return uuid.UUID(raw)


def _date_text(raw: str) -> dt.date:
    if len(raw) > _MAX_SCALAR_TEXT or not _DATE_RE.fullmatch(raw):
        raise ValueError(raw)
    return dt.date.fromisoformat(raw)


def _datetime_text(raw: str) -> dt.datetime:
    if len(raw) > _MAX_SCALAR_TEXT or not _DATE_RE.match(raw):
        raise ValueError(raw)
    return dt.datetime.fromisoformat(raw)


def _on_text(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    """A JSON converter for types JSON carries as strings (UUID, dates)."""

    def from_json(raw: Any) -> Any:
        if not isinstance(raw, str):
            raise ValueError(raw)
        return parse(raw)

    return from_json


def scalar(
    kind: Any, expected: str, text: Callable[[str], Any], js: Callable[[Any], Any]
) -> Converter:
    return Converter(kind, expected, _checked(expected, text), _checked(expected, js))


SCALARS: dict[type, Converter] = {
    str: scalar(str, "a string", str, _exact(str)),
    int: scalar(int, "an integer", _int_text, _int_json),
    float: scalar(float, "a finite number", _float_text, _float_json),
    bool: scalar(bool, "a boolean (true, false, 1 or 0)", _bool_text, _exact(bool)),
}

#: other types converted out of the box
STANDARD: dict[type, Converter] = {
    Decimal: scalar(Decimal, "a decimal number", _decimal_text, _decimal_json),
    uuid.UUID: scalar(uuid.UUID, "a UUID", _uuid_text, _on_text(_uuid_text)),
    dt.date: scalar(dt.date, "an ISO 8601 date (YYYY-MM-DD)", _date_text, _on_text(_date_text)),
    dt.datetime: scalar(
        dt.datetime, "an ISO 8601 date and time", _datetime_text, _on_text(_datetime_text)
    ),
}


def text_converter(kind: Any, expected: str, parse: Callable[[str], Any]) -> Converter:
    """A converter from a ``parse(text)`` function; JSON values must be strings."""
    return scalar(kind, expected, parse, _on_text(parse))


def enum_converter(kind: type[enum.Enum]) -> Converter:
    """Enum members by value; from text, the value's string form (``?color=red``, ``?level=2``)."""
    by_text = {str(member.value): member for member in kind}
    by_value = {(type(m.value), m.value): m for m in kind}
    expected = "one of " + ", ".join(repr(v) for v in by_text)

    def from_json(raw: Any) -> Any:
        return by_value[(type(raw), raw)]

    return scalar(kind, expected, by_text.__getitem__, from_json)


def literal_converter(hint: Any, values: tuple[Any, ...]) -> Converter:
    by_text = {str(value): value for value in values}
    by_value = {(type(value), value): value for value in values}
    expected = "one of " + ", ".join(repr(v) for v in values)

    def from_json(raw: Any) -> Any:
        return by_value[(type(raw), raw)]

    return scalar(hint, expected, by_text.__getitem__, from_json)


def subclass_converter(kind: type, base: Converter) -> Converter:
    """``class Nat(int)`` and friends: the base conversion, then the class's own checks."""
    return Converter(
        kind,
        base.expected,
        _checked(base.expected, lambda raw: kind(base.from_text(raw))),
        _checked(base.expected, lambda raw: kind(base.from_json(raw))),
    )
