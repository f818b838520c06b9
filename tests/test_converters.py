"""Scalar converters (params/converters.py): strict text and JSON conversion."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_casbin_guard.params.converters import SCALARS, Converter

INT = SCALARS[int]
FLOAT = SCALARS[float]
BOOL = SCALARS[bool]
STR = SCALARS[str]


def test_registry_has_the_four_scalars() -> None:
    assert set(SCALARS) == {str, int, float, bool}
    for kind, converter in SCALARS.items():
        assert isinstance(converter, Converter)
        assert converter.type is kind
        assert converter.expected


# --- int ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("7", 7),
        ("-7", -7),
        ("+7", 7),
        ("007", 7),
        ("1" * 64, int("1" * 64)),
    ],
)
def test_int_from_text_accepts(raw: str, expected: int) -> None:
    value = INT.from_text(raw)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize(
    "raw",
    [
        "1_000",
        " 7",
        "7 ",
        "7\n",
        "\u0667",  # Arabic-Indic digit seven: int() would accept it
        "\uff17",  # full-width 7
        "0x10",
        "0b1",
        "1.0",
        "1e3",
        "",
        "-",
        "+",
        "--1",
        "seven",
        "1" * 100,
        "9" * 5000,
        "nan",
        "true",
    ],
)
def test_int_from_text_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        INT.from_text(raw)


@pytest.mark.parametrize("raw", [0, 7, -7, 10**30])
def test_int_from_json_accepts(raw: int) -> None:
    value = INT.from_json(raw)
    assert value == raw
    assert type(value) is int


@pytest.mark.parametrize("raw", [True, False, 1.0, 1.5, "1", None, [1], {"a": 1}])
def test_int_from_json_rejects(raw: Any) -> None:
    with pytest.raises(ValueError):
        INT.from_json(raw)


# --- float ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0.0),
        ("1.5", 1.5),
        ("-1.5", -1.5),
        ("+2", 2.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("1e308", 1e308),
    ],
)
def test_float_from_text_accepts(raw: str, expected: float) -> None:
    value = FLOAT.from_text(raw)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize(
    "raw",
    [
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e999",  # overflows to inf
        "-1e999",
        "1_0.5",
        " 1.5",
        "1.5 ",
        "0x1p3",
        "1,5",
        "",
        ".",
        "e3",
        "1e",
        "\u0661.5",
        "1" * 100,
    ],
)
def test_float_from_text_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        FLOAT.from_text(raw)


@pytest.mark.parametrize(("raw", "expected"), [(1.5, 1.5), (2, 2.0), (-3, -3.0), (0, 0.0)])
def test_float_from_json_accepts(raw: float, expected: float) -> None:
    value = FLOAT.from_json(raw)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize(
    "raw", [True, False, "1.5", None, math.nan, math.inf, -math.inf, [1.5], {"x": 1.5}]
)
def test_float_from_json_rejects(raw: Any) -> None:
    with pytest.raises(ValueError):
        FLOAT.from_json(raw)


def test_float_from_json_rejects_an_integer_too_large_for_a_float() -> None:
    # Python's json module parses integers of any size: a body {"x": 1000...0} with 400 digits
    # must give a 400 issue (ValueError), not an OverflowError (a 500).
    huge = json.loads("1" + "0" * 400)
    with pytest.raises(ValueError):
        FLOAT.from_json(huge)
    with pytest.raises(ValueError):
        FLOAT.from_json(-(10**400))


# --- bool -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["true", "TRUE", "True", "tRuE", "1"])
def test_bool_from_text_true(raw: str) -> None:
    assert BOOL.from_text(raw) is True


@pytest.mark.parametrize("raw", ["false", "FALSE", "False", "fAlSe", "0"])
def test_bool_from_text_false(raw: str) -> None:
    assert BOOL.from_text(raw) is False


@pytest.mark.parametrize(
    "raw", ["yes", "no", "on", "off", "", " true", "true ", "t", "f", "2", "-1", "01", "y"]
)
def test_bool_from_text_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        BOOL.from_text(raw)


def test_bool_from_json() -> None:
    assert BOOL.from_json(True) is True
    assert BOOL.from_json(False) is False


@pytest.mark.parametrize("raw", [1, 0, "true", "false", None, 1.0, [True]])
def test_bool_from_json_rejects(raw: Any) -> None:
    with pytest.raises(ValueError):
        BOOL.from_json(raw)


# --- str ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "abc", " padded ", "1", "\u0667", "line\nbreak"])
def test_str_from_text_is_identity(raw: str) -> None:
    value = STR.from_text(raw)
    assert value == raw
    assert type(value) is str


def test_str_from_json_accepts_strings() -> None:
    assert STR.from_json("hello") == "hello"
    assert STR.from_json("") == ""


@pytest.mark.parametrize("raw", [1, 1.5, 0, True, None, ["a"], {"a": "b"}])
def test_str_from_json_rejects_non_strings(raw: Any) -> None:
    with pytest.raises(ValueError):
        STR.from_json(raw)


# --- properties -----------------------------------------------------------------------------

_INTERESTING_TEXT = st.sampled_from(
    ["", "0", "1", "-1", "+1", "1.5", "1e999", "nan", "inf", "true", "FALSE", "1_000", "\u0667"]
)

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    # json.loads parses integers of any size
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text()
)

JSONISH = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=8,
)


def _check_result(kind: type, value: Any) -> None:
    assert type(value) is kind
    if kind is float:
        assert math.isfinite(value)


@settings(max_examples=150, deadline=None)
@given(raw=st.text() | _INTERESTING_TEXT, kind=st.sampled_from([str, int, float, bool]))
def test_from_text_returns_its_type_or_raises_value_error(raw: str, kind: type) -> None:
    try:
        value = SCALARS[kind].from_text(raw)
    except ValueError:
        return
    _check_result(kind, value)


@settings(max_examples=200, deadline=None)
@given(raw=JSONISH, kind=st.sampled_from([str, int, float, bool]))
def test_from_json_returns_its_type_or_raises_value_error(raw: Any, kind: type) -> None:
    try:
        value = SCALARS[kind].from_json(raw)
    except ValueError:
        return
    _check_result(kind, value)
    assert value == raw or kind is float
