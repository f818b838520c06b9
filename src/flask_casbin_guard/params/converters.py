"""Scalar converters: text (path, query, form) and JSON values to Python values."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_INT_RE = re.compile(r"[+-]?[0-9]{1,64}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]{1,64}(\.[0-9]{0,64})?|\.[0-9]{1,64})([eE][+-]?[0-9]{1,4})?")


@dataclass(frozen=True, slots=True)
class Converter:
    """How to read one Python type from text and from JSON; both raise ``ValueError``."""

    type: type
    #: what a valid value looks like, in words, for 400 details
    expected: str
    from_text: Callable[[str], Any]
    from_json: Callable[[Any], Any]


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
    try:
        return _finite(float(raw))
    except OverflowError:  # JSON integers have no size limit; floats do
        raise ValueError(raw) from None


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


SCALARS: dict[type, Converter] = {
    str: Converter(str, "a string", str, _exact(str)),
    int: Converter(int, "an integer", _int_text, _int_json),
    float: Converter(float, "a finite number", _float_text, _float_json),
    bool: Converter(bool, "a boolean (true, false, 1 or 0)", _bool_text, _exact(bool)),
}
