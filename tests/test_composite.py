"""Every supported annotation: good and bad values from text and JSON (params/composite.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import annotated_types as at
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_casbin_guard.params.composite import Unsupported, build_converter
from flask_casbin_guard.params.converters import ABSENT, Invalid, text_converter


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Nat(int):
    def __new__(cls, value: int) -> Nat:
        if value < 0:
            raise ValueError("negative")
        return super().__new__(cls, value)


@dataclasses.dataclass
class Line:
    product: str
    quantity: Annotated[int, at.Gt(0)]
    note: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Order:
    lines: list[Line]
    rush: bool = False


class Address(pydantic.BaseModel):
    city: str
    zip: Annotated[str, pydantic.StringConstraints(pattern=r"^[0-9]{5}$")]


U = "12345678-1234-5678-1234-567812345678"

#: (annotation, text cases, JSON cases); each case is (input, expected value) or (input, Invalid)
TABLE: list[tuple[Any, list[tuple[Any, Any]], list[tuple[Any, Any]]]] = [
    (str, [("x", "x"), ("", "")], [("x", "x"), (1, Invalid), (None, Invalid)]),
    (int, [("7", 7), ("-07", -7), ("1_0", Invalid), ("x", Invalid)], [(7, 7), (True, Invalid), (7.0, Invalid)]),
    (float, [("1.5", 1.5), ("1e3", 1000.0), ("nan", Invalid)], [(2, 2.0), (1.5, 1.5), ("1.5", Invalid)]),
    (bool, [("true", True), ("0", False), ("yes", Invalid)], [(False, False), (0, Invalid)]),
    (Decimal, [("1.50", Decimal("1.50")), ("Infinity", Invalid), ("1,5", Invalid)],
     [("2.25", Decimal("2.25")), (3, Decimal(3)), (0.1, Decimal("0.1")), (True, Invalid)]),
    (uuid.UUID, [(U, uuid.UUID(U)), (U.replace("-", ""), uuid.UUID(U)), ("nope", Invalid)],
     [(U, uuid.UUID(U)), (12, Invalid)]),
    (dt.date, [("2026-11-22", dt.date(2026, 11, 22)), ("2026-02-30", Invalid), ("22/11/2026", Invalid)],
     [("2026-11-22", dt.date(2026, 11, 22)), (20261122, Invalid)]),
    (dt.datetime, [("2026-11-22T10:00:00+00:00", dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)), ("tomorrow", Invalid)],
     [("2026-11-22 10:00", dt.datetime(2026, 11, 22, 10)), (None, Invalid)]),
    (Color, [("red", Color.RED), ("RED", Invalid)], [("blue", Color.BLUE), (1, Invalid)]),
    (Level, [("2", Level.HIGH), ("HIGH", Invalid)], [(1, Level.LOW), ("1", Invalid)]),
    (Literal["asc", "desc"], [("asc", "asc"), ("up", Invalid)], [("desc", "desc"), (None, Invalid)]),
    (Literal[1, 2], [("2", 2), ("3", Invalid)], [(1, 1), ("1", Invalid), (True, Invalid)]),
    (int | None, [("3", 3)], [(None, None), (3, 3), ("3", Invalid)]),
    (list[int], [("4", [4]), ("x", Invalid)], [([1, 2], [1, 2]), ([1, "2"], Invalid), (1, Invalid)]),
    (dict[str, int], [('{"a": 1}', {"a": 1}), ("a=1", Invalid)], [({"a": 1}, {"a": 1}), ({"a": "1"}, Invalid), ([], Invalid)]),
    (Annotated[int, at.Ge(1), at.Le(10)], [("10", 10), ("11", Invalid), ("0", Invalid)], [(5, 5), (0, Invalid)]),
    (Annotated[str, at.MinLen(2), at.MaxLen(3)], [("ab", "ab"), ("a", Invalid), ("abcd", Invalid)], [("abc", "abc")]),
    (Annotated[str, re.compile(r"[a-z]+")], [("abc", "abc"), ("ab1", Invalid)], [("x", "x"), ("X", Invalid)]),
    (Annotated[float, at.MultipleOf(0.5)], [("1.5", 1.5), ("1.2", Invalid)], [(2, 2.0)]),
    (Nat, [("3", Nat(3)), ("-1", Invalid)], [(4, Nat(4)), (-4, Invalid)]),
    (Any, [("x", "x")], [([1], [1]), (None, None)]),
    (Line, [('{"product": "a", "quantity": 1}', Line("a", 1)), ("a", Invalid)],
     [({"product": "a", "quantity": 2, "tags": ["x"]}, Line("a", 2, tags=["x"])), ({"product": "a", "quantity": 0}, Invalid), ([], Invalid)]),
    (Order, [], [({"lines": [{"product": "a", "quantity": 1}]}, Order([Line("a", 1)])), ({"lines": [{}]}, Invalid)]),
    (Address, [('{"city": "Lyon", "zip": "69001"}', Address(city="Lyon", zip="69001"))],
     [({"city": "Lyon", "zip": "69001"}, Address(city="Lyon", zip="69001")), ({"city": "Lyon", "zip": "6900"}, Invalid)]),
]  # fmt: skip


def _cases() -> list[Any]:
    cases = []
    for hint, texts, jsons in TABLE:
        name = getattr(hint, "__name__", repr(hint))
        cases += [
            pytest.param(hint, "text", raw, want, id=f"{name}-text-{raw!r}") for raw, want in texts
        ]
        cases += [
            pytest.param(hint, "json", raw, want, id=f"{name}-json-{raw!r}") for raw, want in jsons
        ]
    return cases


@pytest.mark.parametrize(("hint", "kind", "raw", "want"), _cases())
def test_conversion_table(hint: Any, kind: str, raw: Any, want: Any) -> None:
    converter = build_converter(hint)
    convert = converter.from_text if kind == "text" else converter.from_json
    if want is Invalid:
        with pytest.raises(Invalid) as info:
            convert(raw)
        assert info.value.problems
    else:
        value = convert(raw)
        assert value == want
        assert type(value) is type(want)


def test_list_from_repeated_text_values_reports_each_bad_item() -> None:
    converter = build_converter(list[int])
    assert converter.multi
    assert converter.from_texts is not None
    assert converter.from_texts(["1", "2"]) == [1, 2]
    with pytest.raises(Invalid) as info:
        converter.from_texts(["1", "x", "y"])
    assert [loc for loc, _, _ in info.value.problems] == [(1,), (2,)]


def test_nested_problems_carry_their_location() -> None:
    with pytest.raises(Invalid) as info:
        build_converter(Order).from_json(
            {"lines": [{"product": "a", "quantity": 1}, {"quantity": "x"}]}
        )
    assert [(loc, received) for loc, _, received in info.value.problems] == [
        (("lines", 1, "product"), ABSENT),
        (("lines", 1, "quantity"), "x"),
    ]


def test_pydantic_problems_carry_their_location() -> None:
    with pytest.raises(Invalid) as info:
        build_converter(Address).from_json({"zip": "1"})
    assert {loc for loc, _, _ in info.value.problems} == {("city",), ("zip",)}


def test_dataclass_post_init_errors_are_invalid() -> None:
    @dataclasses.dataclass
    class Span:
        start: int
        end: int

        def __post_init__(self) -> None:
            if self.end < self.start:
                raise ValueError("end before start")

    with pytest.raises(Invalid, match="end before start"):
        build_converter(Span).from_json({"start": 2, "end": 1})


def test_custom_converters_win_and_apply_inside_containers() -> None:
    money = text_converter(
        Decimal, "an amount like 12.50", lambda raw: Decimal(raw.removesuffix(" EUR"))
    )
    converter = build_converter(list[Decimal], {Decimal: money})
    assert converter.from_json(["1.50 EUR", "2"]) == [Decimal("1.50"), Decimal(2)]
    with pytest.raises(Invalid, match="an amount like 12.50"):
        converter.from_json([3])


@pytest.mark.parametrize(
    "hint",
    [bytes, int | str, dict[int, str], set[int], object, tuple[int, int], type(None)],
)
def test_unsupported_annotations(hint: Any) -> None:
    with pytest.raises(Unsupported):
        build_converter(hint)


@dataclasses.dataclass
class Node:
    children: list[Node]


def test_recursive_dataclass_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="recursive"):
        build_converter(Node)


def test_unresolvable_dataclass_fields_are_unsupported() -> None:
    @dataclasses.dataclass
    class Local:
        child: Local  # a local name: get_type_hints cannot see it

    with pytest.raises(Unsupported, match="cannot resolve the fields of 'Local'"):
        build_converter(Local)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
HINTS = [hint for hint, _, _ in TABLE]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HINTS), st.text(max_size=60))
def test_any_text_gives_a_value_or_invalid(hint: Any, raw: str) -> None:
    converter = build_converter(hint)
    try:
        converter.from_text(raw)
    except Invalid as error:
        assert error.problems


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HINTS), JSON)
def test_any_json_gives_a_value_or_invalid(hint: Any, raw: Any) -> None:
    converter = build_converter(hint)
    try:
        converter.from_json(raw)
    except Invalid as error:
        assert error.problems
