"""Casbin's CSV policy format read strictly (store/csv.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from casbin.persist.adapter import _extract_tokens
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import CASBIN_EXAMPLES
from flask_casbin_guard.errors import PolicyError
from flask_casbin_guard.store.csv import (
    MAX_VALUE_LENGTH,
    PolicyRow,
    check_row,
    format_line,
    parse_policy,
    read_policy_file,
    split_line,
)

ARITIES = {"p": 3, "g": 2}
EXAMPLES = CASBIN_EXAMPLES
WriteFile = Callable[[str, str], str]


def _policy_error(lines: list[str], source: str = "policy.csv") -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(lines, ARITIES, source)
    return str(info.value)


# --- parse_policy ---------------------------------------------------------------------------


def test_rows_comments_and_blank_lines() -> None:
    lines = [
        "# a comment",
        "",
        "   ",
        "p, alice, data1, read",
        "  # an indented comment",
        "\t",
        "g,bob,admin",
        "  p ,  bob  , data2 ,write  ",
    ]
    assert parse_policy(lines, ARITIES, "x.csv") == [
        PolicyRow("p", ("alice", "data1", "read")),
        PolicyRow("g", ("bob", "admin")),
        PolicyRow("p", ("bob", "data2", "write")),
    ]


def test_empty_policy() -> None:
    assert parse_policy([], ARITIES, "x") == []
    assert parse_policy(["# only", "", "#"], ARITIES, "x") == []


def test_commas_inside_brackets_stay_in_one_value() -> None:
    rows = parse_policy(
        [
            'p, keyMatch(r.obj, "/x"), data, read',
            "p, r.sub.age in [18, 19, 20], /data, read",
            "p, f(g(a, b), [c, (d, e)]), obj, act",
        ],
        ARITIES,
        "abac.csv",
    )
    assert rows == [
        PolicyRow("p", ('keyMatch(r.obj, "/x")', "data", "read")),
        PolicyRow("p", ("r.sub.age in [18, 19, 20]", "/data", "read")),
        PolicyRow("p", ("f(g(a, b), [c, (d, e)])", "obj", "act")),
    ]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        pytest.param("x, alice, data1, read", "unknown policy type 'x'", id="unknown-ptype"),
        pytest.param("P, alice, data1, read", "unknown policy type 'P'", id="ptype-case"),
        pytest.param("p, alice, data1, read, allow", "take 3 values, this one has 4", id="long"),
        pytest.param("p, alice, data1", "take 3 values, this one has 2", id="short"),
        pytest.param("g, alice", "take 2 values, this one has 1", id="g-short"),
        pytest.param("p, alice, data1, read,", "this one has 4", id="trailing-comma-arity"),
        pytest.param("p, alice, data1,", "value 3 is empty", id="trailing-comma"),
        pytest.param("p, alice,, read", "value 2 is empty", id="doubled-comma"),
        pytest.param("p,, data1, read", "value 1 is empty", id="leading-comma"),
        pytest.param('p, "alice", data1, read', "quoted", id="double-quoted"),
        pytest.param("p, alice, 'data1', read", "quoted", id="single-quoted"),
        pytest.param("p, f(alice, data1, read", "unclosed '('", id="unclosed-paren"),
        pytest.param("p, alice), data1, read", "unbalanced ')'", id="stray-close"),
        pytest.param("p, f(alice], data1, read", "unbalanced ']'", id="mismatched"),
        pytest.param("p, [alice, data1, read", "unclosed '['", id="unclosed-bracket"),
        pytest.param("p, al\tice, data1, read", "control character", id="tab"),
        pytest.param("p, al\x00ice, data1, read", "control character", id="nul"),
        pytest.param("p, alice, da\x1bta1, read", "value 2 contains a control", id="escape"),
        pytest.param(
            f"p, {'a' * (MAX_VALUE_LENGTH + 1)}, data1, read", "longer than 255", id="long-value"
        ),
    ],
)
def test_bad_rows_name_source_and_line(line: str, fragment: str) -> None:
    lines = ["# header", "p, alice, data1, read", "", line, "p, bob, data2, write"]
    message = _policy_error(lines, "conf/policy.csv")
    assert message.startswith("conf/policy.csv, line 4: ")
    assert fragment in message


def test_value_of_exactly_255_characters_is_accepted() -> None:
    value = "a" * MAX_VALUE_LENGTH
    assert parse_policy([f"p, {value}, d, r"], ARITIES, "x") == [PolicyRow("p", (value, "d", "r"))]


def test_first_bad_line_is_reported() -> None:
    message = _policy_error(["p, a, b", "p, a, b, c, d"], "src")
    assert message.startswith("src, line 1: ")


def test_unknown_ptype_lists_the_known_ones() -> None:
    message = _policy_error(["g2, a, b"])
    assert "['g', 'p']" in message


# --- read_policy_file -----------------------------------------------------------------------


def test_read_policy_file(write_file: WriteFile) -> None:
    path = write_file("policy.csv", "# c\np, alice, data1, read\r\n\ng, alice, admin\n")
    assert read_policy_file(path, ARITIES) == [
        PolicyRow("p", ("alice", "data1", "read")),
        PolicyRow("g", ("alice", "admin")),
    ]
    assert read_policy_file(Path(path), ARITIES) == read_policy_file(path, ARITIES)


def test_read_policy_file_error_names_file_and_line(write_file: WriteFile) -> None:
    path = write_file("bad.csv", "p, alice, data1, read\n\n# c\np, bob,, write\n")
    with pytest.raises(PolicyError) as info:
        read_policy_file(path, ARITIES)
    assert str(info.value).startswith(f"{path}, line 4: ")
    assert "value 2 is empty" in str(info.value)


def test_comment_with_unusual_line_breaks_keeps_line_numbers(write_file: WriteFile) -> None:
    # Casbin's file adapter splits lines on "\n" only; a form feed, NEL or U+2028 inside a
    # comment is still part of that comment, and later lines keep their numbers.
    path = write_file(
        "odd.csv",
        "# section\x0c one\n# see\u2028below\n# next\x85line\np, alice, data1, read\np, bad\n",
    )
    with pytest.raises(PolicyError) as info:
        read_policy_file(path, ARITIES)
    assert str(info.value).startswith(f"{path}, line 5: ")
    assert "this one has 1" in str(info.value)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(PolicyError) as info:
        read_policy_file(path, ARITIES)
    assert str(path) in str(info.value)
    assert isinstance(info.value.original_error, FileNotFoundError)


def test_directory_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        read_policy_file(tmp_path, ARITIES)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value.original_error, OSError)


def test_non_utf8_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"p, caf\xe9, data1, read\n")
    with pytest.raises(PolicyError) as info:
        read_policy_file(path, ARITIES)
    assert str(path) in str(info.value)
    assert isinstance(info.value.original_error, UnicodeDecodeError)


# --- split_line / check_row -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "tokens"),
    [
        ("p, a, b, c", ["p", "a", "b", "c"]),
        ("p,a,b,c", ["p", "a", "b", "c"]),
        ("p", ["p"]),
        ("", [""]),
        ("a,", ["a", ""]),
        (",", ["", ""]),
        ("p, (a, b), [c, d]", ["p", "(a, b)", "[c, d]"]),
        ("p, a(b)c, d", ["p", "a(b)c", "d"]),
    ],
)
def test_split_line(line: str, tokens: list[str]) -> None:
    assert split_line(line) == tokens
    if line:
        assert _extract_tokens(line) == tokens


@pytest.mark.parametrize("line", ["(", ")", "a, [b)", "a, (b]", "((a)", "a])", "[a, (b, c]"])
def test_split_line_refuses_unbalanced_brackets(line: str) -> None:
    with pytest.raises(ValueError, match="unbalanced|unclosed"):
        split_line(line)


def test_check_row_accepts() -> None:
    assert check_row("p", ["a", "b", "c"], ARITIES) == PolicyRow("p", ("a", "b", "c"))
    assert check_row("p", ("f(a, b)", "b", "c"), ARITIES).values == ("f(a, b)", "b", "c")
    # a single quote on one side only is not quoting
    assert check_row("g", ['"a', "b'"], ARITIES).values == ('"a', "b'")


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (["a,b", "c"], "value 1 contains a comma outside brackets"),
        (["a", "f(x), y"], "value 2 contains a comma outside brackets"),
        (["a", "f(x,"], "value 2 has unbalanced brackets"),
        ([" a", "b"], "value 1 has leading or trailing spaces"),
        (["a", "b "], "value 2 has leading or trailing spaces"),
        (["a", ""], "value 2 is empty"),
        (["a", 3], "value 2 is empty"),
        (["''", "b"], "value 1 is quoted"),
        (["a", "b\n"], "value 2 contains a control character"),
        (["a", "b", "c"], "take 2 values"),
    ],
)
def test_check_row_refuses(values: list[object], fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        check_row("g", values, ARITIES)  # type: ignore[arg-type]
    assert fragment in str(info.value)


# --- agreement with pycasbin ----------------------------------------------------------------


def _example_policy_files() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(EXAMPLES.glob("*.csv"))


def _policy_lines(path: Path) -> list[str]:
    # exactly what casbin's FileAdapter feeds to _extract_tokens
    lines = [raw.decode().strip() for raw in path.read_bytes().split(b"\n")]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent")
def test_example_folder_has_policies() -> None:
    files = _example_policy_files()
    assert len(files) >= 20
    assert sum(len(_policy_lines(path)) for path in files) > 100


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent")
@pytest.mark.parametrize("path", _example_policy_files(), ids=lambda p: p.name)
def test_split_line_matches_pycasbin_on_examples(path: Path) -> None:
    for line in _policy_lines(path):
        assert split_line(line) == _extract_tokens(line), line


_LINE_TEXT = st.text(
    alphabet=st.sampled_from(list("ab ,()[]\"'#x")) | st.characters(exclude_categories=["Cs"]),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(line=_LINE_TEXT)
def test_split_line_matches_pycasbin_on_balanced_lines(line: str) -> None:
    try:
        tokens = split_line(line)
    except ValueError as error:
        assert re.match(r"(unbalanced|unclosed) ", str(error))
        return
    if line[:1] == "#" or line == "":
        return
    assert tokens == _extract_tokens(line)


# --- one grammar for writing and reading (issue 17, item 3) ---------------------------------

_VALUE_TEXT = st.text(
    alphabet=st.sampled_from(list("ab ,()[]\"'#=+-@;\t"))
    | st.characters(exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
)


@pytest.mark.parametrize(
    "values",
    [
        ["alice", "report(2024", "read"],  # unbalanced: the reader joins the rest of the line
        ["alice", "report)2024", "read"],
        ["alice", "a[", "]b"],  # balanced across two values: read back as one
        ["alice", "f(x", "y)"],
        ['"alice', 'data"', "read"],  # a quote opened in one value, closed in the next
        ["'alice", "data'", "read"],
    ],
)
def test_the_writer_refuses_what_the_reader_refuses(values: list[str]) -> None:
    line = ", ".join(["p", *values])
    with pytest.raises(PolicyError):
        parse_policy([line], ARITIES, "policy.csv")
    with pytest.raises(ValueError):
        check_row("p", values, ARITIES)


@settings(max_examples=400, deadline=None)
@given(values=st.lists(_VALUE_TEXT, min_size=3, max_size=3))
@example(values=["alice", "report(2024", "read"])
@example(values=['"alice', 'data"', "read"])
def test_every_row_the_writer_accepts_reads_back_the_same(values: list[str]) -> None:
    try:
        row = check_row("p", values, ARITIES)
    except ValueError:
        return  # refused before anything is written
    assert parse_policy([format_line(row)], ARITIES, "policy.csv") == [row]


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.lists(_VALUE_TEXT, min_size=3, max_size=3), max_size=6))
def test_a_file_of_accepted_rows_reads_back_as_those_rows(rows: list[list[str]]) -> None:
    accepted = []
    for values in rows:
        try:
            accepted.append(check_row("p", values, ARITIES))
        except ValueError:
            continue
    text = "".join(format_line(row) + "\n" for row in accepted)
    assert parse_policy(text.split("\n"), ARITIES, "policy.csv") == accepted
