"""authz/linear.py: Python patterns written as RE2, matching exactly where ``re.match`` does."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_casbin_guard.authz.linear import Refused, check, compile_linear, groups, translate

HYPOTHESIS = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: characters where Python and RE2 differ unless translated: newline, Unicode digits, spaces and
#: letters, a lone surrogate and its stand-in U+FFFD
KEY_CHARACTERS = ["a", "b", "A", "/", ":", "_", "-", "\n", " ", "1", "é", "٣", "\u2003", "\ud800"]

ATOMS = [
    "a",
    "b",
    "/",
    ":",
    ".",
    "\\n",
    "\\d",
    "\\D",
    "\\w",
    "\\W",
    "\\s",
    "\\S",
    "[ab]",
    "[^a]",
    "[a-c]",
    "[^/\\n]",
    "[\\d/]",
    "[^\\w]",
    "é",
    "\\.",
    "\\Z",
    "\\A",
    "^",
    "()",
]
REFUSED_ATOMS = ["\\b", "(?=a)", "(?!a)", "(?<=a)", "(a)\\1", "(?>a)", "a*+", "(?i:a)", "$a"]
QUANTIFIERS = ["", "", "", "*", "+", "?", "*?", "+?", "??", "{2}", "{1,3}", "{,2}", "{2,}?"]


def _regexes(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    groups = st.builds(
        lambda body, kind: kind.format(body), children, st.sampled_from(["({})", "(?:{})"])
    )
    repeated = st.builds(
        lambda body, count: f"(?:{body}){count}", children, st.sampled_from(QUANTIFIERS)
    )
    sequences = st.lists(children, min_size=2, max_size=4).map("".join)
    branches = st.lists(children, min_size=2, max_size=3).map("|".join)
    return groups | repeated | sequences | branches


atoms = st.builds(
    lambda atom, count: atom + count, st.sampled_from(ATOMS), st.sampled_from(QUANTIFIERS)
)
regexes = st.builds(
    lambda body, end: body + end,
    st.recursive(atoms, _regexes, max_leaves=8),
    st.sampled_from(["", "", "$", "\\Z"]),
)
keys = st.lists(st.sampled_from(KEY_CHARACTERS), max_size=10).map("".join)


def python_match(pattern: str, key: str) -> bool:
    return re.match(pattern, key) is not None


@HYPOTHESIS
@given(pattern=regexes, texts=st.lists(keys, min_size=1, max_size=12))
def test_translation_matches_where_python_does(pattern: str, texts: list[str]) -> None:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError):
        return
    try:
        _, matches = compile_linear(pattern)
    except Refused:
        assert "$" in pattern[:-1] or "{" in pattern, pattern  # only "$" mid-pattern
        return
    for text in texts:
        assert matches(text) == python_match(pattern, text), (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a$", "a\n", True),  # "$" before a final newline
        ("a$", "a\n\n", False),
        ("a\\Z", "a\n", False),
        ("doc", "doc:1", True),  # re.match anchors at the start only
        ("oc", "doc", False),
        ("\\d+$", "٣٤", True),  # Unicode digits, as in Python
        ("\\w$", "é", True),
        ("\\s$", "\u2003", True),
        ("[^a]$", "\n", True),
        (".$", "\n", False),
        (".$", "\ud800", True),  # a lone surrogate is one character
        ("[^\\w]$", "\ud800", True),
        ("(?:a|ab)c", "abc", True),
        ("a{2,3}$", "aaaa", False),
    ],
)
def test_semantics_kept(pattern: str, text: str, expected: bool) -> None:
    assert python_match(pattern, text) is expected
    assert compile_linear(pattern)[1](text) is expected


@pytest.mark.parametrize("atom", REFUSED_ATOMS)
def test_refused(atom: str) -> None:
    with pytest.raises(Refused):
        translate(atom)


@pytest.mark.parametrize(
    "pattern",
    [
        "(?i)a",
        "(?s).",
        "(?m)^a",
        "(?x)a",
        "a{1001}",
        "\ud800",
        "\ufffd",
        "[\ud800-\udbff]",
        "[\ufff0-\uffff]",
    ],
)
def test_refused_flags_counts_and_surrogates(pattern: str) -> None:
    with pytest.raises(Refused):
        check(pattern)


def test_invalid_python_pattern_is_python_error() -> None:
    with pytest.raises(re.error):
        translate("(a")


def test_groups_as_python() -> None:
    compiled, _ = compile_linear("^/u/([^/]+)/d/([^/]+)$")
    assert groups(compiled, "/u/1/d/2") == ("1", "2")
    assert groups(compiled, "/u/1/d/") is None


@pytest.mark.parametrize(
    "pattern", ["^doc:(a+)+$", "^(a|aa)+$", "^(a*)*b$", "(x+x+)+y", "^(\\w+\\s?)*$"]
)
def test_catastrophic_patterns_run_in_linear_time(pattern: str) -> None:
    _, matches = compile_linear(pattern)
    hostile = "doc:" + "a" * 100_000 + "!"
    started = time.perf_counter()
    assert matches(hostile) is False
    assert time.perf_counter() - started < 0.5
