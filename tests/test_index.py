"""Unit tests of the indexed evaluator's modules: roles, patterns, matcher, compiled, index.

pycasbin is imported here only as the reference the modules must reproduce.
"""

from __future__ import annotations

import ast
import gc
import re
import threading
from typing import Any

import pytest
from casbin import util as casbin_util
from casbin.rbac.default_role_manager import DomainManager, RoleManager
from casbin.util import builtin_operators
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_casbin_guard.authz.assemble import paused_gc
from flask_casbin_guard.authz.engine import PolicyEngine
from flask_casbin_guard.authz.matcher import (
    EqTerm,
    GenericTerm,
    MatchTerm,
    RequestTerm,
    RoleTerm,
    SafeTerm,
    Unsupported,
    Vocabulary,
    escape_assertion,
    parse_matcher,
    replace_eval,
    rewrite,
)
from flask_casbin_guard.authz.patterns import InvalidPattern, PatternFunction
from flask_casbin_guard.authz.roles import MAX_ROLE_DEPTH, RoleGraph, check_role_depth
from flask_casbin_guard.authz.scan import Delegate
from flask_casbin_guard.errors import PolicyError
from flask_casbin_guard.store.csv import PolicyRow
from helpers import DOMAIN_MODEL as EXACT_DOMAIN_MODEL

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BUILTINS = {
    "keyMatch": builtin_operators.key_match_func,
    "keyMatch2": builtin_operators.key_match2_func,
    "keyMatch3": builtin_operators.key_match3_func,
    "keyMatch4": builtin_operators.key_match4_func,
    "keyMatch5": builtin_operators.key_match5_func,
    "regexMatch": builtin_operators.regex_match_func,
    "globMatch": builtin_operators.glob_match_func,
}

# --- roles ----------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])


def test_role_graph_closure_and_unknown_names() -> None:
    graph = RoleGraph([("alice", "editor"), ("editor", "viewer"), ("bob", "viewer")], domains=False)
    assert graph.roles("alice") == {"editor", "viewer"}
    assert graph.roles("bob") == {"viewer"}
    assert graph.roles("viewer") == frozenset()
    assert graph.has_link("alice", "viewer") is True
    assert graph.has_link("viewer", "alice") is False
    # g(x, x) holds for any x, known or not; unknown names reach nothing else
    assert graph.has_link("stranger", "stranger") is True
    assert graph.has_link("stranger", "viewer") is False
    assert graph.roles("stranger") == frozenset()
    assert graph.members == {"alice", "editor", "bob"}


def test_role_graph_shares_equal_role_sets() -> None:
    graph = RoleGraph([(f"user{i}", "staff") for i in range(100)], domains=False)
    assert graph.roles("user1") is graph.roles("user99")


def test_role_graph_domains_are_separate_and_optional() -> None:
    links = [("alice", "admin", "d1"), ("bob", "admin", "d2")]
    with_domains = RoleGraph(links, domains=True)
    assert with_domains.has_link("alice", "admin", "d1") is True
    assert with_domains.has_link("alice", "admin", "d2") is False
    assert with_domains.has_link("alice", "admin", "unknown") is False
    assert with_domains.has_link("alice", "admin") is False  # 2-argument g(): domain ""
    # A role definition without a domain ignores the domain of the call, like pycasbin.
    without = RoleGraph([link[:2] for link in links], domains=False)
    assert without.has_link("alice", "admin", "d2") is True


def test_role_graph_stops_where_pycasbin_stops() -> None:
    chain = [(f"r{i}", f"r{i + 1}") for i in range(12)]
    graph = RoleGraph(chain, domains=False)
    reference = RoleManager(MAX_ROLE_DEPTH)
    for user, role in chain:
        reference.add_link(user, role)
    for target in range(13):
        assert graph.has_link("r0", f"r{target}") is reference.has_link("r0", f"r{target}")
    assert graph.has_link("r0", "r9") is True
    assert graph.has_link("r0", "r10") is False


@FAST
@given(st.lists(st.tuples(NAMES, NAMES, st.sampled_from(["d1", "d2"])), max_size=14))
def test_role_graph_equals_pycasbin_role_managers(links: list[tuple[str, str, str]]) -> None:
    plain = RoleGraph([link[:2] for link in links], domains=False)
    domained = RoleGraph(links, domains=True)
    manager = RoleManager(MAX_ROLE_DEPTH)
    domains = DomainManager(MAX_ROLE_DEPTH)
    for user, role, domain in links:
        manager.add_link(user, role)
        domains.add_link(user, role, domain)
    for user in "abcdefz":
        for role in "abcdefz":
            assert plain.has_link(user, role) is manager.has_link(user, role)
            for domain in ("d1", "d2", "d3"):
                assert domained.has_link(user, role, domain) is domains.has_link(user, role, domain)


def test_check_role_depth_names_a_node_on_the_cycle() -> None:
    # "entry" leads into the cycle b -> c -> d -> b but is not on it
    links = [("entry", "b"), ("b", "c"), ("c", "d"), ("d", "b")]
    with pytest.raises(PolicyError, match="cycle through '[bcd]'"):
        check_role_depth(links)


def test_check_role_depth_accepts_nine_links_and_refuses_ten() -> None:
    check_role_depth([(f"r{i}", f"r{i + 1}") for i in range(MAX_ROLE_DEPTH - 1)])
    with pytest.raises(PolicyError, match="10 links deep"):
        check_role_depth([(f"r{i}", f"r{i + 1}") for i in range(MAX_ROLE_DEPTH)])
    # wide but shallow graphs are fine
    check_role_depth([(f"u{i}", f"g{i % 7}") for i in range(1000)])


# --- patterns -------------------------------------------------------------------------------

PATH_CHARS = st.sampled_from(
    [*"/ab1:*.{}()[]?+$^\\|-_\n,!", "/*", ":id", "{id}", "**", "(.*)", "{a,b}", "[ab]", "/**"]
)
PATTERNS = st.lists(PATH_CHARS, max_size=8).map("".join)
KEYS = st.lists(st.sampled_from([*"/ab1.:?=-\n", "/a", "/b/", "x", ".a"]), max_size=8).map("".join)


def _reference(name: str, key: str, pattern: str) -> tuple[str, Any]:
    try:
        return ("ok", bool(BUILTINS[name](key, pattern)))
    except Exception as error:  # the reference may raise: that is what is compared
        return ("error", type(error).__name__)


@FAST
@given(
    st.sampled_from(sorted(PatternFunction.NAMES)),
    PATTERNS,
    st.lists(KEYS, min_size=1, max_size=6),
)
def test_pattern_functions_equal_pycasbin(name: str, pattern: str, keys: list[str]) -> None:
    function = PatternFunction(name, BUILTINS[name])
    try:
        function.prepare([pattern])
    except InvalidPattern:
        return  # the engine falls back to pycasbin for such policies
    head = function.head(pattern)
    for key in [*keys, pattern, pattern + "\n", pattern + "?q=1", pattern.replace("*", "x/y")]:
        expected = _reference(name, key, pattern)
        assert expected[0] == "ok", (key, pattern, expected)  # prepare() promised no error
        assert function.match(key, pattern) is expected[1], (key, pattern)
        if function.literal(pattern):
            assert (pattern in function.lookup_keys(key)) is expected[1], (key, pattern)
        if expected[1]:  # the prefix index files the pattern under a head every match has
            assert function.request_key(key).startswith(head), (key, pattern, head)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("keyMatch2", "/a/(b"),
        ("keyMatch2", "/**"),
        ("keyMatch3", "/a/**"),
        ("keyMatch4", "/a/(b)/{id}"),
        ("keyMatch4", "/a/(.*)"),
        ("keyMatch5", "*"),
        ("regexMatch", "(unclosed"),
        ("globMatch", "{a,b}" * 12),
    ],
)
def test_patterns_that_could_raise_are_refused(name: str, pattern: str) -> None:
    with pytest.raises(InvalidPattern):
        PatternFunction(name, BUILTINS[name]).check(pattern)


def test_pattern_quirks_are_pycasbin_quirks() -> None:
    key_match2 = PatternFunction("keyMatch2", BUILTINS["keyMatch2"])
    assert key_match2.match("/api/v1x0/items", "/api/v1.0/:res") is True  # unescaped "."
    assert key_match2.match("/items/1?x=2", "/items/:id") is True  # query swallowed
    assert key_match2.match("/foo\n", "/foo") is True  # "$" before a final newline
    assert key_match2.lookup_keys("/foo\n") == ("/foo\n", "/foo")
    assert key_match2.match("/anything", "*") is True
    regex = PatternFunction("regexMatch", BUILTINS["regexMatch"])
    assert regex.match("/api/admin", "admin") is False  # anchored at the start only
    assert regex.match("/admin/x", "/admin") is True
    key_match = PatternFunction("keyMatch", BUILTINS["keyMatch"])
    assert key_match.match("/foobar", "/foo*") is True
    assert key_match.literal("/foo") and not key_match.literal("/foo*")
    assert PatternFunction("keyMatch5", BUILTINS["keyMatch5"]).lookup_keys("/a?b") == ("/a",)
    with pytest.raises(ValueError, match="not a pattern function"):
        PatternFunction("ipMatch", BUILTINS["keyMatch"])


def test_prepare_builds_regex_free_matchers_and_hands_them_over() -> None:
    function = PatternFunction("keyMatch2", BUILTINS["keyMatch2"])
    function.prepare(f"/api/r{i}/res/:id" for i in range(1000))
    assert len(function.prepared) == 1000
    # the usual patterns need no regular expression: nothing for re to compile
    assert not any(isinstance(arg, re.Pattern) for _, arg in function.prepared.values())
    with pytest.raises(InvalidPattern):
        function.prepare(["/ok/:id", "/bad/(x"])
    # the next engine's function takes over what this one prepared, and only what it uses
    following = PatternFunction("keyMatch2", BUILTINS["keyMatch2"], reuse=function.prepared)
    following.prepare(["/api/r1/res/:id", "/new/:id"])
    assert following.prepared["/api/r1/res/:id"] is function.prepared["/api/r1/res/:id"]
    assert set(following.prepared) == {"/api/r1/res/:id", "/new/:id"}


# --- matcher --------------------------------------------------------------------------------

VOCABULARY = Vocabulary(
    request=["r_sub", "r_dom", "r_obj", "r_act"],
    policy=["p_sub", "p_dom", "p_obj", "p_act", "p_rule"],
    roles={"g": True, "g2": False},
    patterns=frozenset({"keyMatch2", "regexMatch"}),
)


def _kinds(matcher: str) -> list[type]:
    return [type(term) for term in parse_matcher(matcher, VOCABULARY).terms]


def test_matcher_terms_are_classified() -> None:
    assert _kinds(
        "g(r_sub, p_sub, r_dom) && r_dom == p_dom && keyMatch2(r_obj, p_obj) && p_act == r_act"
    ) == [RoleTerm, EqTerm, MatchTerm, EqTerm]
    assert _kinds(
        "r_sub == p_sub && (g2(r_obj, p_obj) || p_obj == '*') && r_obj.Owner == p_sub"
    ) == [
        EqTerm,
        SafeTerm,
        GenericTerm,
    ]
    assert _kinds("r_sub.Age > 18 && custom(r_obj, p_obj) && !(r_act != p_act)") == [
        RequestTerm,
        GenericTerm,
        SafeTerm,
    ]
    # a pattern taken from the request could be an invalid regex: not safe
    assert _kinds("r_sub == p_sub && keyMatch2(p_obj, r_obj)") == [EqTerm, GenericTerm]


def test_matcher_or_parts_around_the_policy_part() -> None:
    plan = parse_matcher(
        "r_sub == 'root' || r_sub == p_sub && r_obj == p_obj || r_obj in ('x',)", VOCABULARY
    )
    assert len(plan.before) == 1 and len(plan.after) == 1
    assert [type(t) for t in plan.terms] == [EqTerm, EqTerm]
    # a request-only matcher is one term, the same for every rule
    plan = parse_matcher("r_sub == r_obj.Owner", VOCABULARY)
    assert [type(t) for t in plan.terms] == [RequestTerm]
    # several branches on the policy: one term, evaluated for every rule
    plan = parse_matcher("r_sub == p_sub || p_sub == '*'", VOCABULARY)
    assert [type(t) for t in plan.terms] == [SafeTerm] and not plan.before


@pytest.mark.parametrize(
    "matcher",
    [
        "r_sub == p_sub &&",
        "r_sub == p_sub; r_obj == p_obj",
        "[x for x in p_sub] == r_sub",
        "eval(r_sub) && r_obj == p_obj",
    ],
    ids=["syntax", "two-statements", "comprehension", "eval-request"],
)
def test_matchers_outside_the_shapes_are_unsupported(matcher: str) -> None:
    with pytest.raises(Unsupported):
        parse_matcher(matcher, VOCABULARY)


def test_repeated_tokens_are_unsupported() -> None:
    repeated = Vocabulary(request=["r_sub", "r_sub"], policy=["p_sub"])
    with pytest.raises(Unsupported, match="twice"):
        parse_matcher("r_sub == p_sub", repeated)


@pytest.mark.parametrize(
    "text",
    [
        "g(r.sub, p.sub) && r.obj == p.obj || r.act != p.act && !g(r.sub, 'x')",
        "r2.sub == p2.sub && p.x == r.y",
        "eval(p.rule) && keyMatch(r.obj, p.obj)",
        "a!=b && !c",
    ],
)
def test_text_helpers_equal_pycasbin(text: str) -> None:
    assert escape_assertion(text) == casbin_util.escape_assertion(text)
    rules = ["r_sub.Age > 1", "x"]
    assert replace_eval(text, list(rules)) == casbin_util.replace_eval(text, list(rules))
    expected = (
        text.replace("&&", "and").replace("||", "or").replace("!=", "\0").replace("!", "not ")
    ).replace("\0", "!=")
    assert rewrite(text) == expected


# --- engine wiring of the index ---------------------------------------------------------------

DOMAIN_MODEL = EXACT_DOMAIN_MODEL.replace("r.obj == p.obj", "keyMatch2(r.obj, p.obj)")


def _domain_engine() -> PolicyEngine:
    rows = [
        PolicyRow("p", ("admin", "d1", "/items/:id", "GET")),
        PolicyRow("p", ("admin", "d1", "/items", "GET")),
        PolicyRow("p", ("reader", "d2", "/docs/*", "GET")),
        PolicyRow("g", ("alice", "admin", "d1")),
        PolicyRow("g", ("alice", "reader", "d2")),
    ]
    return PolicyEngine(DOMAIN_MODEL, rows, cache_size=0)


def test_index_answers_and_explains() -> None:
    engine = _domain_engine()
    assert engine.fast is True and engine.reason == ""
    assert engine.explain("alice", "d1", "/items/7", "GET") == (
        True,
        ("admin", "d1", "/items/:id", "GET"),
    )
    assert engine.explain("alice", "d1", "/items", "GET") == (
        True,
        ("admin", "d1", "/items", "GET"),
    )
    assert engine.explain("alice", "d2", "/items/7", "GET") == (False, ())
    assert engine.explain("alice", "d2", "/docs/a/b", "GET") == (
        True,
        ("reader", "d2", "/docs/*", "GET"),
    )
    assert engine.enforce("bob", "d1", "/items/7", "GET") is False


def test_index_delegates_values_it_cannot_reproduce() -> None:
    engine = _domain_engine()
    index = engine._index
    assert index is not None
    with pytest.raises(Delegate):
        index.decide(("alice", "d1", 7, "GET"))
    # the engine then asks pycasbin, which answers (here: keyMatch2 on an int raises)
    with pytest.raises(PolicyError):
        engine.enforce("alice", "d1", 7, "GET")
    assert engine.enforce(7, "d1", "/items/1", "GET") is False
    with pytest.raises(PolicyError):
        engine.enforce("alice", "d1", "/items/1")


def test_index_memory_does_not_grow_with_unknown_requests() -> None:
    engine = _domain_engine()
    graph = engine._graphs["g"]
    before = {domain: dict(closures) for domain, closures in graph._closure.items()}
    for i in range(300):
        assert engine.enforce(f"stranger{i}", f"dom{i}", f"/items/{i}", "GET") is False
    assert {domain: dict(c) for domain, c in graph._closure.items()} == before
    assert engine._reference is None  # pycasbin was never needed


def test_has_role_with_a_domain() -> None:
    engine = _domain_engine()
    assert engine.has_role("alice", "admin", "d1") is True
    assert engine.has_role("alice", "admin", "d2") is False
    assert engine.has_role("alice", "admin") is False  # no 2-argument roles in this model
    assert engine.has_role("ghost", "admin", "d1") is False


def test_evaluator_is_per_thread() -> None:
    model = DOMAIN_MODEL.replace("r.act == p.act", "r.obj.Owner == r.sub").replace(
        "keyMatch2(r.obj, p.obj) && ", ""
    )
    engine = PolicyEngine(model, [PolicyRow("p", ("alice", "d1", "x", "y"))], cache_size=0)
    assert engine.fast is True

    class Doc:
        def __init__(self, owner: str) -> None:
            self.Owner = owner

    wrong: list[str] = []

    def check(owner: str) -> None:
        for _ in range(300):
            if engine.enforce("alice", "d1", Doc(owner), "y") is not (owner == "alice"):
                wrong.append(owner)

    threads = [threading.Thread(target=check, args=(name,)) for name in ("alice", "bob") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert wrong == []


def test_safe_term_closures_on_compound_terms() -> None:
    model = DOMAIN_MODEL.replace(
        "m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj, p.obj) && r.act == p.act",
        "m = (g(r.sub, p.sub, r.dom) || p.sub == '*') && r.obj in ('a', 'b') "
        "&& !(r.act != p.act) && r.dom in p.dom",
    )
    rows = [PolicyRow("p", ("*", "d1d2", "x", "GET")), PolicyRow("g", ("bob", "*", "d9"))]
    engine = PolicyEngine(model, rows, cache_size=0)
    plan = engine._index._plan if engine._index else None
    assert plan is not None
    assert [type(t) for t in plan.terms] == [SafeTerm, RequestTerm, SafeTerm, SafeTerm]
    assert engine.enforce("anyone", "d1", "a", "GET") is True
    assert engine.enforce("anyone", "d3", "a", "GET") is False
    assert engine.enforce("anyone", "d1", "c", "GET") is False
    assert engine.enforce("anyone", "d2", "b", "POST") is False


def test_eval_rule_that_escapes_its_parentheses_is_not_indexed() -> None:
    model = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub_rule, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = eval(p.sub_rule) && r.obj == p.obj && r.act == p.act
"""
    safe = PolicyEngine(model, [PolicyRow("p", ("r.sub == 'alice'", "o", "read"))])
    assert safe.fast is True
    injected = PolicyEngine(model, [PolicyRow("p", ("True) or (False", "o", "read"))])
    assert injected.fast is False
    assert "eval() rule" in injected.reason
    # pycasbin's pasted text is "(True) or (False) and ...": true for any object
    assert injected.enforce("bob", "other", "read") is True


# --- gc pause ---------------------------------------------------------------------------------


def test_paused_gc_nests_and_restores() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # the application's choice stays
    finally:
        gc.enable()


def test_node_helpers_accept_rewritten_text() -> None:
    node = ast.parse(rewrite("!(r_sub == p_sub) && r_act != p_act")).body[0]
    assert isinstance(node, ast.Expr)
