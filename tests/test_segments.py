"""The regex-free keyMatch chains against pycasbin's own functions (builtin_operators)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from casbin.util import builtin_operators
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_casbin_guard.authz import segments
from flask_casbin_guard.authz.segments import chain, compile_chain

FAST = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REFERENCE = {
    "keyMatch2": builtin_operators.key_match2,
    "keyMatch3": builtin_operators.key_match3,
    "keyMatch5": builtin_operators.key_match5,
}
#: pieces of patterns: path text, every parameter syntax, "/*", "." and regex syntax
PATTERN_PIECES = st.sampled_from(
    [*"/ab1.:-_\n{}*?+()[]^$|\\", "/*", ":id", ":x.y", "{id}", "{a}{b}", "/:id", "/{id}", "**"]
)
KEY_PIECES = st.sampled_from([*"/ab1.:-_?=\n{}x", "/a", "/b/", "ab", "/ab1"])
PATTERNS = st.lists(PATTERN_PIECES, max_size=9).map("".join)
KEYS = st.lists(KEY_PIECES, max_size=10).map("".join)


def _expected(name: str, key: str, pattern: str) -> Any:
    try:
        return bool(REFERENCE[name](key, pattern))
    except Exception as error:  # a chain never raises: the pattern was not one
        return type(error).__name__


def _keys_near(pattern: str) -> list[str]:
    """Keys built from the pattern itself: parameters filled, slashes added or dropped."""
    filled = pattern.replace(":id", "7").replace("{id}", "7").replace("/*", "/x/y")
    return [filled, filled + "\n", filled + "/", filled[:-1], filled + "?q=1", filled + "x"]


@FAST
@given(st.sampled_from(sorted(REFERENCE)), PATTERNS, st.lists(KEYS, min_size=1, max_size=8))
@example("keyMatch2", "/api/v1.0/:res", ["/api/v1x0/items", "/api/v1/0/x"])  # unescaped "."
@example("keyMatch2", "/items/:id", ["/items/1?x=2", "/items/\n", "/items/1/"])
@example("keyMatch2", "/user:x/:id", ["/user:x/1"])  # ":" mid-segment is a parameter
@example("keyMatch2", "*", ["", "anything\n", "a\nb"])
@example("keyMatch3", "/{a}{b}/c", ["/xy/c", "/x/c"])  # two parameters in one segment
@example("keyMatch5", "/p/{a}}b/*", ["/p/x}b/1", "/p/x}b"])  # greedy "{[^/]+}"
@example("keyMatch2", "/a/*/b.c/:id", ["/a/x/y/bzc/1", "/a//b.c/1\n", "/a/\n/b.c/1"])
def test_chains_answer_as_pycasbin(name: str, pattern: str, keys: list[str]) -> None:
    tokens = chain(name, pattern)
    if tokens is None:
        return  # a real regular expression: the engine compiles it with re (tested elsewhere)
    function, argument = compile_chain(tokens)
    for key in [*keys, *_keys_near(pattern)]:
        expected = _expected(name, key, pattern)
        # keyMatch5 drops the query string before comparing: PatternFunction does that part
        wanted = key.split("?")[0] if name == "keyMatch5" else key
        assert function(wanted, argument) is expected, (name, pattern, key, tokens)


@pytest.mark.parametrize(
    ("pattern", "matcher"),
    [
        ("/api/users", "_exact"),
        ("/api/users/:id", "_head_param"),
        ("/static/*", "_head_star"),
        ("*", "_head_star"),
        ("/api/:org/users/:id", "_segments"),
        ("/files/:name.json", "_head_param"),  # the parameter swallows ".json"
        ("/api/v1.0/:res", "_automaton"),
        ("/a/*/b", "_automaton"),
    ],
)
def test_common_shapes_get_their_fast_matcher(pattern: str, matcher: str) -> None:
    tokens = chain("keyMatch2", pattern)
    assert tokens is not None
    assert compile_chain(tokens)[0] is getattr(segments, matcher)


@pytest.mark.parametrize("pattern", ["/a/(b)", "/a/b+", "/a/[bc]", "/a|b", "/a/{2}", "/a/b?"])
def test_regular_expressions_are_not_chains(pattern: str) -> None:
    assert chain("keyMatch2", pattern) is None


def test_evaluation_is_linear_where_a_regex_backtracks() -> None:
    # "/*" repeated: each becomes ".*", and re backtracks on a key that almost matches.
    pattern = "/*" * 12 + "/end"
    key = "/" + "x/" * 2000 + "no"
    tokens = chain("keyMatch2", pattern)
    assert tokens is not None
    function, argument = compile_chain(tokens)
    started = time.process_time()
    assert function(key, argument) is False
    assert function(key[:-2] + "end", argument) is True
    assert time.process_time() - started < 2.0
