"""Reloads derived from the previous engine: same answers as a fresh build, nothing shared
changed, and a full build whenever a derivation could not be exact."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_casbin_guard.authz.delta import MAX_CHANGED_ROWS, changed_span
from flask_casbin_guard.authz.engine import PolicyEngine
from flask_casbin_guard.errors import PolicyError
from flask_casbin_guard.store.csv import PolicyRow

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RBAC = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = {effect}

[matchers]
m = g(r.sub, p.sub) && {objects} && r.act == p.act
"""
EFFECTS = [
    "some(where (p.eft == allow))",
    "!some(where (p.eft == deny))",
    "some(where (p.eft == allow)) && !some(where (p.eft == deny))",
    "priority(p.eft) || deny",
]
OBJECTS = ["keyMatch2(r.obj, p.obj)", "r.obj == p.obj", "keyMatch(r.obj, p.obj)"]
SUBJECTS = ["alice", "bob", "admin", "staff"]
PATTERNS = ["/a/:id", "/a/*", "/a/1", "/b/:x/c", "*", "/a/v1.0/:id", "/b/*"]
P_ROWS = st.tuples(
    st.sampled_from(SUBJECTS),
    st.sampled_from(PATTERNS),
    st.sampled_from(["read", "write"]),
    st.sampled_from(["allow", "deny"]),
).map(lambda values: PolicyRow("p", values))
G_ROWS = [PolicyRow("g", ("alice", "admin")), PolicyRow("g", ("bob", "staff"))]
REQUESTS = [
    (sub, obj, act)
    for sub in [*SUBJECTS, "nobody"]
    for obj in ["/a/1", "/a/2", "/a/v1x0/3", "/b/9/c", "/b/9", "/c"]
    for act in ["read", "write"]
]


def _answers(engine: PolicyEngine) -> list[tuple[bool, tuple[str, ...]]]:
    return [engine.explain(*request) for request in REQUESTS]


@st.composite
def edits(draw: st.DrawFn) -> tuple[list[PolicyRow], list[list[PolicyRow]]]:
    """A policy and the successive versions a few changes turn it into."""
    rows = draw(st.lists(P_ROWS, min_size=1, max_size=12)) + G_ROWS
    versions = []
    for _ in range(draw(st.integers(1, 4))):
        rows = list(rows)
        kind = draw(st.sampled_from(["append", "remove", "replace", "insert", "role"]))
        position = draw(st.integers(0, len(rows) - 1))
        if kind == "append":
            rows.append(draw(P_ROWS))
        elif kind == "remove" and len(rows) > 1:
            del rows[position]
        elif kind == "replace":
            rows[position] = draw(P_ROWS)
        elif kind == "insert":
            rows.insert(position, draw(P_ROWS))
        else:
            rows.append(PolicyRow("g", (draw(st.sampled_from(["alice", "bob", "carol"])), "staff")))
        versions.append(rows)
    return rows, versions


@SETTINGS
@given(effect=st.sampled_from(EFFECTS), objects=st.sampled_from(OBJECTS), history=edits())
def test_derived_engines_answer_as_fresh_builds(
    effect: str, objects: str, history: tuple[list[PolicyRow], list[list[PolicyRow]]]
) -> None:
    text = RBAC.format(effect=effect, objects=objects)
    _, versions = history
    first = versions[0]
    engine = PolicyEngine(text, first[:-1] or first, cache_size=0)
    for rows in versions:
        before = _answers(engine)
        following = PolicyEngine(text, rows, cache_size=0, previous=engine)
        assert _answers(following) == _answers(PolicyEngine(text, rows, cache_size=0))
        # the previous engine keeps serving requests meanwhile: it must not have changed
        assert _answers(engine) == before
        assert following.rows == tuple(rows)
        engine = following


def _rules(count: int) -> list[PolicyRow]:
    return [
        PolicyRow("p", (f"role{i % 50}", f"/api/{i}/:id", "read", "allow")) for i in range(count)
    ]


def _model() -> str:
    return RBAC.format(effect=EFFECTS[0], objects=OBJECTS[0])


def test_appending_a_rule_refiles_only_its_bucket() -> None:
    rows = _rules(5000) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    added = PolicyRow("p", ("alice", "/new/:id", "read", "allow"))
    following = PolicyEngine(_model(), [*rows, added], cache_size=0, previous=engine)
    old, new = engine._index, following._index
    assert old is not None and new is not None
    # derived, not rebuilt: untouched buckets and the prepared matchers are the same objects
    assert new._buckets[("role7", "read")] is old._buckets[("role7", "read")]
    assert new.patterns["keyMatch2"].prepared is old.patterns["keyMatch2"].prepared
    assert following.explain("alice", "/new/1", "read") == (True, added.values)
    assert engine.explain("alice", "/new/1", "read") == (False, ())


def test_a_full_build_takes_over_prepared_matchers() -> None:
    rows = _rules(300) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    moved = [rows[-3], *rows[:-3], *rows[-2:]]  # a rule moved first: no slot for it
    following = PolicyEngine(_model(), moved, cache_size=0, previous=engine)
    old, new = engine._index, following._index
    assert old is not None and new is not None
    assert new._buckets is not old._buckets and new._holes == 0
    shared = old.patterns["keyMatch2"].prepared
    assert all(new.patterns["keyMatch2"].prepared[text] is shared[text] for text in ("/api/1/:id",))


def test_role_changes_and_other_models_build_from_scratch() -> None:
    rows = _rules(100) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    grown = PolicyEngine(
        _model(), [*rows, PolicyRow("g", ("carol", "role1"))], cache_size=0, previous=engine
    )
    assert grown.roles == {"admin", "staff", "role1"}
    assert grown.explain("carol", "/api/1/5", "read")[0] is True
    other = RBAC.format(effect=EFFECTS[1], objects=OBJECTS[0])
    changed = PolicyEngine(other, rows, cache_size=0, previous=engine)
    assert changed.explain("nobody", "/x", "read") == (True, ())  # deny-override: its own model


def test_many_changes_compact_with_a_full_build() -> None:
    rows = _rules(64) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    for position in range(20):
        rows = rows[:position] + rows[position + 1 :]  # removed: an empty slot
        rows[position] = PolicyRow("p", ("alice", f"/other/{position}/:id", "read", "allow"))
        engine = PolicyEngine(_model(), rows, cache_size=0, previous=engine)
        index = engine._index
        assert index is not None
        assert index._churn * 8 <= len(index.rules)  # holes and stale matchers never pile up
        prepared = index.patterns["keyMatch2"].prepared
        assert len(prepared) <= len(index.rules) * 9 // 8
    assert _answers(engine) == _answers(PolicyEngine(_model(), rows, cache_size=0))


def test_an_invalid_added_rule_is_refused_as_by_a_full_build() -> None:
    rows = _rules(10) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    bad = PolicyRow("p", ("alice", "/a/(b", "read", "allow"))  # an invalid regex for keyMatch2
    following = PolicyEngine(_model(), [*rows, bad], cache_size=0, previous=engine)
    assert following.fast is False  # like a fresh build: pycasbin answers (and fails) itself
    assert PolicyEngine(_model(), [*rows, bad], cache_size=0).fast is False


@pytest.mark.parametrize("size", [0, 1, 7, 100])
def test_changed_span_finds_the_changed_rows(size: int) -> None:
    rnd = random.Random(size)
    old = _rules(size)
    for _ in range(30):
        new = list(old)
        if new and rnd.random() < 0.5:
            del new[rnd.randrange(len(new))]
        new.insert(rnd.randrange(len(new) + 1), PolicyRow("p", ("x", "y", "read", "allow")))
        start, old_end, new_end = changed_span(old, new)
        assert old[:start] + new[start:new_end] + old[old_end:] == new
        assert start <= old_end <= len(old) and start <= new_end <= len(new)
    # one row inserted: the span is that row
    at = size // 2
    new = [*old[:at], PolicyRow("p", ("x", "y", "read", "allow")), *old[at:]]
    assert changed_span(old, new) == (at, at, at + 1)


def test_equal_rows_that_are_not_the_same_objects_are_no_change() -> None:
    old = _rules(50)
    copies = [PolicyRow(row.ptype, tuple(row.values)) for row in old]
    assert changed_span(old, copies) == (50, 50, 50)


def test_large_changes_build_from_scratch() -> None:
    rows = _rules(MAX_CHANGED_ROWS + 10) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    reversed_rows = rows[::-1]
    following = PolicyEngine(_model(), reversed_rows, cache_size=0, previous=engine)
    index: Any = following._index
    assert index is not None and index._slots is None


def test_a_derived_engine_keeps_every_per_model_fact_and_check() -> None:
    rows = _rules(20) + G_ROWS
    engine = PolicyEngine(_model(), rows, cache_size=0)
    following = PolicyEngine(
        _model(), [*rows, PolicyRow("p", ("bob", "/x/:id", "read", "allow"))], previous=engine
    )
    assert following._index is not None and following._index._churn == 1  # derived
    for name in ("request_tokens", "arities", "policy_tokens", "has_roles", "roles"):
        assert getattr(following, name) == getattr(engine, name), name
    assert following.unknown_functions == engine.unknown_functions == ()
    # a rule whose eval() text does not parse is refused on a derived reload too
    text = RBAC.replace("&& r.act == p.act", "&& eval(p.act)").format(
        effect=EFFECTS[0], objects=OBJECTS[0]
    )
    good = [PolicyRow("p", ("alice", "/a/:id", "r.sub == 'alice'", "allow")), *G_ROWS]
    base = PolicyEngine(text, good, cache_size=0)
    bad = PolicyRow("p", ("bob", "/a/:id", "r.sub ==", "allow"))
    with pytest.raises(PolicyError, match="eval"):
        PolicyEngine(text, [*good, bad], cache_size=0, previous=base)
