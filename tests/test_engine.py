"""PolicyEngine / EngineHolder (authz/engine.py) against real pycasbin."""

from __future__ import annotations

import gc
import itertools
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import casbin
import pytest

from conftest import CASBIN_EXAMPLES
from flask_casbin_guard.authz.engine import (
    MAX_ROLE_DEPTH,
    EngineHolder,
    PolicyEngine,
    model_arities,
    parse_model,
)
from flask_casbin_guard.errors import PolicyError
from flask_casbin_guard.store.csv import PolicyRow, read_policy_file

EXAMPLES = CASBIN_EXAMPLES
CASBIN_LOGGERS = ("casbin", "casbin.enforcer", "casbin.policy", "casbin.role")

needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent")

RBAC_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""

RBAC_ROWS = [
    PolicyRow("p", ("alice", "data1", "read")),
    PolicyRow("p", ("data2_admin", "data2", "read")),
    PolicyRow("g", ("alice", "data2_admin")),
]


@pytest.fixture(autouse=True)
def _keep_casbin_loggers() -> Iterator[None]:
    """pycasbin's own Enforcer disables its loggers process-wide: undo that after each test."""
    loggers = [logging.getLogger(name) for name in CASBIN_LOGGERS]
    saved = [(lg.disabled, lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, (disabled, level, propagate) in zip(loggers, saved, strict=True):
        lg.disabled, lg.propagate = disabled, propagate
        lg.setLevel(level)


def _load(model: str, policy: str) -> tuple[str, list[PolicyRow]]:
    text = (EXAMPLES / model).read_text(encoding="utf-8")
    rows = read_policy_file(EXAMPLES / policy, model_arities(parse_model(text, model)))
    return text, rows


def _engine(model: str, policy: str) -> PolicyEngine:
    text, rows = _load(model, policy)
    return PolicyEngine(text, rows, source=model)


def _reference(model: str, policy: str) -> Any:
    return casbin.Enforcer(str(EXAMPLES / model), str(EXAMPLES / policy))


def _candidates(engine: PolicyEngine, extras: dict[str, list[str]]) -> list[list[str]]:
    """Every value the files give for each request token, plus extras and an unknown one."""
    model = parse_model(engine.model_text, "m")
    p_tokens = [token.removeprefix("p_") for token in model["p"]["p"].tokens]
    columns: list[list[str]] = []
    for token in engine.request_tokens:
        values: set[str] = set(extras.get(token, [])) | {"nobody"}
        if token in p_tokens:
            index = p_tokens.index(token)
            values |= {row.values[index] for row in engine.policy("p")}
        if token == "sub":
            values |= {v for row in engine.policy("g") for v in row.values[:2]}
        if token == "dom":
            values |= {row.values[2] for row in engine.policy("g") if len(row.values) > 2}
        columns.append(sorted(values))
    return columns


EXAMPLE_CASES = [
    pytest.param("basic_model.conf", "basic_policy.csv", {}, id="basic"),
    pytest.param("rbac_model.conf", "rbac_policy.csv", {}, id="rbac"),
    pytest.param("rbac_with_deny_model.conf", "rbac_with_deny_policy.csv", {}, id="deny"),
    pytest.param("rbac_with_domains_model.conf", "rbac_with_domains_policy.csv", {}, id="domains"),
    pytest.param(
        "keymatch2_model.conf",
        "keymatch2_policy.csv",
        {
            "obj": [
                "/alice_data/hello",
                "/alice_data/",
                "/alice_data/a/b",
                "/alice_data2/1/using/2",
                "/alice_data2/1/using",
                "/bob_data/1",
            ],
            "act": ["POST", "GETX"],
        },
        id="keymatch2",
    ),
    pytest.param("priority_model.conf", "priority_policy.csv", {}, id="priority"),
]


@needs_examples
@pytest.mark.parametrize(("model", "policy", "extras"), EXAMPLE_CASES)
def test_decisions_equal_pycasbin(model: str, policy: str, extras: dict[str, list[str]]) -> None:
    engine = _engine(model, policy)
    reference = _reference(model, policy)
    allowed = denied = 0
    for request in itertools.product(*_candidates(engine, extras)):
        expected, rule = reference.enforce_ex(*request)
        assert engine.enforce(*request) is bool(expected), request
        assert engine.explain(*request) == (bool(expected), tuple(rule)), request
        allowed += bool(expected)
        denied += not expected
    # the comparison covers both outcomes
    assert allowed > 0
    assert denied > 0


@needs_examples
def test_explain_returns_the_matched_rule() -> None:
    engine = _engine("rbac_model.conf", "rbac_policy.csv")
    assert engine.explain("alice", "data1", "read") == (True, ("alice", "data1", "read"))
    assert engine.explain("alice", "data2", "write") == (True, ("data2_admin", "data2", "write"))
    assert engine.explain("bob", "data1", "read") == (False, ())
    deny = _engine("rbac_with_deny_model.conf", "rbac_with_deny_policy.csv")
    assert deny.explain("alice", "data2", "write") == (
        False,
        ("alice", "data2", "write", "deny"),
    )


@needs_examples
def test_engine_metadata() -> None:
    basic = _engine("basic_model.conf", "basic_policy.csv")
    assert basic.request_tokens == ("sub", "obj", "act")
    assert basic.arities == {"p": 3}
    assert basic.has_roles is False
    assert basic.roles == frozenset()
    assert basic.has_role("alice", "alice") is False

    domains = _engine("rbac_with_domains_model.conf", "rbac_with_domains_policy.csv")
    assert domains.request_tokens == ("sub", "dom", "obj", "act")
    assert domains.arities == {"p": 4, "g": 3}
    assert domains.has_roles is False
    assert domains.roles == frozenset({"admin"})

    rbac = _engine("rbac_model.conf", "rbac_policy.csv")
    assert rbac.has_roles is True
    assert rbac.roles == frozenset({"data2_admin"})
    assert [r.values for r in rbac.policy("g")] == [("alice", "data2_admin")]
    assert len(rbac.policy("p")) == 4
    assert len(rbac.policy()) == 5
    assert rbac.rows == tuple(rbac.policy())


@needs_examples
def test_model_arities_of_examples() -> None:
    def arities(name: str) -> dict[str, int]:
        return model_arities(parse_model((EXAMPLES / name).read_text(encoding="utf-8"), name))

    assert arities("rbac_with_deny_model.conf") == {"p": 4, "g": 2}
    assert arities("rbac_with_resource_roles_model.conf") == {"p": 3, "g": 2, "g2": 2}
    assert arities("abac_rule_model.conf") == {"p": 3}


# --- roles ----------------------------------------------------------------------------------


def _chain(links: int, domain: tuple[str, ...] = ()) -> list[PolicyRow]:
    return [PolicyRow("g", (f"r{i}", f"r{i + 1}", *domain)) for i in range(links)]


def test_has_role_is_transitive_through_nine_links() -> None:
    links = MAX_ROLE_DEPTH - 1
    assert links == 9
    rows = [*_chain(links), PolicyRow("p", (f"r{links}", "vault", "open"))]
    engine = PolicyEngine(RBAC_MODEL, rows)
    assert engine.has_role("r0", f"r{links}") is True
    assert engine.has_role("r0", "r5") is True
    assert engine.has_role("r5", "r0") is False
    assert engine.has_role("r0", "ghost") is False
    # pycasbin itself follows the whole chain
    assert engine.enforce("r0", "vault", "open") is True
    assert engine.roles == frozenset(f"r{i}" for i in range(1, links + 1))


def test_roles_are_the_names_granted_by_g_rows() -> None:
    engine = PolicyEngine(RBAC_MODEL, RBAC_ROWS)
    assert engine.roles == frozenset({"data2_admin"})
    assert engine.has_role("alice", "data2_admin") is True
    assert engine.has_role("data2_admin", "alice") is False
    assert engine.enforce("alice", "data2", "read") is True
    assert engine.enforce("data2_admin", "data1", "read") is False


def test_role_chain_of_ten_links_is_refused() -> None:
    with pytest.raises(PolicyError, match="deeper than pycasbin follows|links deep"):
        PolicyEngine(RBAC_MODEL, _chain(MAX_ROLE_DEPTH))


def test_long_chain_anywhere_in_the_graph_is_refused() -> None:
    rows = [PolicyRow("g", ("alice", "r0")), *_chain(MAX_ROLE_DEPTH - 1)]
    with pytest.raises(PolicyError):
        PolicyEngine(RBAC_MODEL, rows)


def test_chains_in_different_domains_do_not_add_up() -> None:
    domain_model = RBAC_MODEL.replace("g = _, _", "g = _, _, _").replace(
        "g(r.sub, p.sub)", "g(r.sub, p.sub, 'd1')"
    )
    rows = [PolicyRow("g", (f"r{i}", f"r{i + 1}", "d1")) for i in range(5)] + [
        PolicyRow("g", (f"r{i}", f"r{i + 1}", "d2")) for i in range(5, 10)
    ]
    engine = PolicyEngine(domain_model, rows)
    assert engine.roles == frozenset(f"r{i}" for i in range(1, 11))
    with pytest.raises(PolicyError):
        PolicyEngine(domain_model, [PolicyRow("g", (*r.values[:2], "d1")) for r in rows])


@pytest.mark.parametrize(
    "links",
    [
        [("a", "b"), ("b", "a")],
        [("a", "a")],
        [("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")],
    ],
    ids=["two", "self", "inner"],
)
def test_role_cycle_is_refused(links: list[tuple[str, str]]) -> None:
    with pytest.raises(PolicyError, match="cycle"):
        PolicyEngine(RBAC_MODEL, [PolicyRow("g", link) for link in links])


def test_diamond_is_not_a_cycle() -> None:
    rows = [PolicyRow("g", link) for link in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]]
    engine = PolicyEngine(RBAC_MODEL, rows)
    assert engine.has_role("a", "d") is True


def test_has_role_for_unknown_user_does_not_grow_the_role_manager() -> None:
    engine = PolicyEngine(RBAC_MODEL, RBAC_ROWS)
    manager = engine._enforcer.get_role_manager()
    before = len(manager.all_roles)
    for i in range(50):
        assert engine.has_role(f"stranger{i}", "data2_admin") is False
    assert len(manager.all_roles) == before
    assert not any(name.startswith("stranger") for name in manager.all_roles)


# --- failures -------------------------------------------------------------------------------

AGE_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub.Age > 18 && r.obj == p.obj && r.act == p.act
"""


class Person:
    def __init__(self, age: int) -> None:
        self.Age = age
        self.age = age


def test_abac_attribute_model() -> None:
    engine = PolicyEngine(AGE_MODEL, [PolicyRow("p", ("anyone", "data1", "read"))])
    assert engine.enforce(Person(30), "data1", "read") is True
    assert engine.enforce(Person(10), "data1", "read") is False
    with pytest.raises(PolicyError) as info:
        engine.enforce("alice", "data1", "read")
    assert info.value.original_error is not None
    with pytest.raises(PolicyError):
        engine.explain(object(), "data1", "read")


@needs_examples
def test_abac_rule_example_with_subject_lacking_the_attribute() -> None:
    engine = _engine("abac_rule_model.conf", "abac_rule_policy.csv")
    assert engine.enforce(Person(25), "/data1", "read") is True
    assert engine.enforce(Person(10), "/data1", "read") is False
    assert engine.enforce(Person(70), "/data2", "write") is False
    with pytest.raises(PolicyError):
        engine.enforce("alice", "/data1", "read")


@needs_examples
def test_ip_match_with_a_non_ip_value() -> None:
    engine = _engine("ipmatch_model.conf", "ipmatch_policy.csv")
    assert engine.enforce("192.168.2.7", "data1", "read") is True
    assert engine.enforce("192.168.3.7", "data1", "read") is False
    with pytest.raises(PolicyError) as info:
        engine.enforce("not-an-ip", "data1", "read")
    assert isinstance(info.value.original_error, ValueError)
    assert "not-an-ip" not in str(info.value)


def test_wrong_number_of_request_values() -> None:
    engine = PolicyEngine(RBAC_MODEL, RBAC_ROWS)
    with pytest.raises(PolicyError):
        engine.enforce("alice", "data1")


def test_broken_matcher_fails_at_enforce_time() -> None:
    engine = PolicyEngine(
        RBAC_MODEL.replace("r.act == p.act", "r.act === p.act)"), RBAC_ROWS, source="m"
    )
    with pytest.raises(PolicyError):
        engine.enforce("alice", "data1", "read")


def test_custom_functions() -> None:
    model = RBAC_MODEL.replace("r.obj == p.obj", "prefix(r.obj, p.obj)")

    def prefix(value: str, start: str) -> bool:
        return value.startswith(start)

    engine = PolicyEngine(model, RBAC_ROWS, functions={"prefix": prefix})
    assert engine.enforce("alice", "data1/x", "read") is True
    assert engine.enforce("alice", "other", "read") is False


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("garbage", "invalid Casbin model src"),
        ("", "request_definition"),
        ("[request_definition]\nr = sub\n", "policy_definition"),
        ("[request_definition\nr = sub\n", "invalid Casbin model src"),
        (RBAC_MODEL.split("[policy_effect]")[0], "policy_effect"),
        (RBAC_MODEL.split("[matchers]")[0], "matchers"),
    ],
    ids=["garbage", "empty", "no-policy", "bad-header", "no-effect", "no-matchers"],
)
def test_invalid_models_are_policy_errors(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        parse_model(text, "src")
    with pytest.raises(PolicyError):
        PolicyEngine(text, [], source="src")


def test_unsupported_effect_is_a_policy_error() -> None:
    model = RBAC_MODEL.replace("some(where (p.eft == allow))", "bogus")
    with pytest.raises(PolicyError):
        PolicyEngine(model, RBAC_ROWS)


# --- logging --------------------------------------------------------------------------------

SECRET_VALUES = ("alice", "data1", "data2_admin", "data2")


def _open_casbin_loggers() -> None:
    for name in CASBIN_LOGGERS:
        logger = logging.getLogger(name)
        logger.disabled = False
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def _casbin_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] == "casbin"]


def test_capture_setup_sees_pycasbin_logs(caplog: pytest.LogCaptureFixture) -> None:
    # control: the same setup does see pycasbin's logs when the engine is not involved
    _open_casbin_loggers()
    caplog.set_level(logging.DEBUG)
    from flask_casbin_guard.authz.engine import _RowsAdapter

    enforcer = casbin.Enforcer(parse_model(RBAC_MODEL, "m"), _RowsAdapter(RBAC_ROWS))
    assert enforcer.enforce("alice", "data1", "read") is True
    messages = [r.getMessage() for r in _casbin_records(caplog)]
    assert any("data2_admin" in m for m in messages)


def test_engine_logs_nothing_through_casbin_loggers(caplog: pytest.LogCaptureFixture) -> None:
    _open_casbin_loggers()
    logging.getLogger("casbin.role").disabled = True  # one set each way
    before = {name: logging.getLogger(name).disabled for name in CASBIN_LOGGERS}
    caplog.set_level(logging.DEBUG)

    engines = [PolicyEngine(RBAC_MODEL, RBAC_ROWS), PolicyEngine(RBAC_MODEL, RBAC_ROWS)]
    for engine in engines:
        assert engine.enforce("alice", "data1", "read") is True
        assert engine.enforce("alice", "data2", "read") is True
        assert engine.enforce("bob", "data1", "read") is False
        assert engine.explain("alice", "data2", "read")[0] is True
        assert engine.has_role("alice", "data2_admin") is True

    leaked = [
        r.getMessage()
        for r in _casbin_records(caplog)
        if any(value in r.getMessage() for value in SECRET_VALUES)
    ]
    assert leaked == []
    after = {name: logging.getLogger(name).disabled for name in CASBIN_LOGGERS}
    assert after == before
    assert after["casbin"] is False
    assert after["casbin.policy"] is False
    assert after["casbin.role"] is True


# --- EngineHolder ---------------------------------------------------------------------------


def test_holder_swap_replaces_the_engine_and_bumps_generation() -> None:
    first = PolicyEngine(RBAC_MODEL, RBAC_ROWS)
    holder = EngineHolder(first)
    assert holder.engine is first
    assert holder.generation == 0
    second = PolicyEngine(RBAC_MODEL, [PolicyRow("p", ("bob", "data1", "read"))])
    holder.swap(second)
    assert holder.engine is second
    assert holder.generation == 1
    assert holder.engine.enforce("bob", "data1", "read") is True
    assert holder.engine.enforce("alice", "data1", "read") is False
    holder.swap(first)
    assert holder.engine is first
    assert holder.generation == 2


def test_concurrent_enforce_during_swaps() -> None:
    rows = [
        *RBAC_ROWS,
        *[PolicyRow("p", (f"user{i}", f"obj{i}", "read")) for i in range(200)],
        *[PolicyRow("g", (f"user{i}", "data2_admin")) for i in range(0, 200, 7)],
    ]
    holder = EngineHolder(PolicyEngine(RBAC_MODEL, rows))
    stop = threading.Event()
    wrong: list[str] = []
    calls = [0] * 4
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        try:
            while not stop.is_set():
                engine = holder.engine
                if engine.enforce("alice", "data2", "read") is not True:
                    wrong.append("alice denied")
                if engine.enforce("user7", "data2", "read") is not True:
                    wrong.append("user7 denied")
                if engine.enforce("bob", "data2", "read") is not False:
                    wrong.append("bob allowed")
                calls[slot] += 1
        except BaseException as error:  # report in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(50):
            holder.swap(PolicyEngine(RBAC_MODEL, rows))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert wrong == []
    assert holder.generation == 50
    assert all(count > 0 for count in calls)


def test_decision_is_not_broken_by_another_thread_deciding_meanwhile() -> None:
    """Two threads deciding at once must both get their answer.

    pycasbin parses the matcher with ``ast.parse`` on every uncached decision, and CPython 3.11
    keeps the AST constructor's recursion counter in interpreter-wide state: a thread switch in
    the middle of one parse, to a thread that parses too, makes the first one fail with
    ``SystemError: AST constructor recursion depth mismatch``. The scheduler does this rarely on
    its own; a gc callback (as used by APM agents) places the switch deterministically here.
    """
    # The indexed evaluator parses nothing per decision: force the pycasbin path under test.
    engine = PolicyEngine(RBAC_MODEL, RBAC_ROWS, fast=False)
    outcomes: dict[str, object] = {}
    other_may_run = threading.Event()
    other_done = threading.Event()
    first_thread: list[int] = []
    collections_in_parse = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase != "start" or threading.get_ident() not in first_thread:
            return
        frame = sys._getframe(1)
        if frame.f_code.co_name != "parse" or not frame.f_code.co_filename.endswith("ast.py"):
            return
        collections_in_parse[0] += 1
        if collections_in_parse[0] == 3:  # inside the AST construction of the first decision
            other_may_run.set()
            other_done.wait(timeout=0.5)  # a lock in the engine may keep the other one waiting

    def decide(key: str, *request: str) -> None:
        try:
            outcomes[key] = engine.enforce(*request)
        except PolicyError as error:
            outcomes[key] = error

    def first() -> None:
        first_thread.append(threading.get_ident())
        decide("first", "alice", "data2", "read")

    def second() -> None:
        other_may_run.wait(timeout=5)
        decide("second", "bob", "data1", "read")
        other_done.set()

    threads = [threading.Thread(target=second), threading.Thread(target=first)]
    threshold = gc.get_threshold()
    gc.callbacks.append(on_gc)
    gc.set_threshold(1)
    try:
        for thread in threads:
            thread.start()
        threads[1].join(timeout=10)
    finally:
        gc.callbacks.remove(on_gc)
        gc.set_threshold(*threshold)
        other_may_run.set()
        threads[0].join(timeout=10)
    assert collections_in_parse[0] >= 3  # the switch did happen inside the parse
    assert outcomes == {"first": True, "second": False}


# --- indexed evaluator ------------------------------------------------------------------------

KEYMATCH2_MODEL = RBAC_MODEL.replace("r.obj == p.obj", "keyMatch2(r.obj, p.obj)")


def _large_policy(roles: int) -> list[PolicyRow]:
    rows = [
        PolicyRow("p", (f"role{r}", f"/api/r{r}/res{k}/:id", act))
        for r in range(roles)
        for k in range(5)
        for act in ("GET", "POST")
    ]
    return rows + [PolicyRow("g", (f"user{u}", f"role{u % roles}")) for u in range(roles * 2)]


def test_reloading_in_a_loop_never_gives_a_wrong_answer() -> None:
    rows = _large_policy(500)  # 5,000 rules: each build takes a few milliseconds
    holder = EngineHolder(PolicyEngine(KEYMATCH2_MODEL, rows, cache_size=0))
    assert holder.engine.fast is True
    stop = threading.Event()
    wrong: list[object] = []
    errors: list[BaseException] = []
    calls = [0] * 4

    def worker(slot: int) -> None:
        try:
            while not stop.is_set():
                engine = holder.engine
                allowed = engine.explain("user7", "/api/r7/res3/42", "POST")
                if allowed != (True, ("role7", "/api/r7/res3/:id", "POST")):
                    wrong.append(allowed)
                if holder.engine.enforce("user7", "/api/r8/res3/42", "POST") is not False:
                    wrong.append("user7 allowed on role8's path")
                calls[slot] += 1
        except BaseException as error:  # report in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(30):
            holder.swap(PolicyEngine(KEYMATCH2_MODEL, rows, cache_size=0))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert wrong == []
    assert holder.generation == 30
    assert all(count > 0 for count in calls)


def test_unsupported_model_falls_back_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    model = RBAC_MODEL.replace("g = _, _", "g = _, _, (_, _)")
    with caplog.at_level(logging.WARNING, logger="flask_casbin_guard.engine"):
        engine = PolicyEngine(model, [PolicyRow("p", ("alice", "data1", "read"))], source="m.conf")
    assert engine.fast is False
    assert "role definition" in engine.reason
    assert any("m.conf" in r.getMessage() and "pycasbin" in r.getMessage() for r in caplog.records)
    assert engine.enforce("alice", "data1", "read") is True
    fast = PolicyEngine(RBAC_MODEL, RBAC_ROWS)
    assert fast.fast is True and fast.reason == ""
    forced = PolicyEngine(RBAC_MODEL, RBAC_ROWS, fast=False)
    assert forced.fast is False and forced.reason == "disabled by the caller"


def test_cache_size_is_a_constructor_parameter() -> None:
    cached = PolicyEngine(RBAC_MODEL, RBAC_ROWS, cache_size=2)
    for _ in range(3):
        assert cached.enforce("alice", "data2", "read") is True
    info = cached._cached_explain.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses, info.maxsize) == (2, 1, 2)
    uncached = PolicyEngine(RBAC_MODEL, RBAC_ROWS, cache_size=0)
    assert not hasattr(uncached._cached_explain, "cache_info")
    assert uncached.enforce("alice", "data2", "read") is True


@pytest.mark.parametrize("domains", [False, True], ids=["roles", "domains"])
def test_pycasbin_fallback_does_not_store_unknown_names(domains: bool) -> None:
    model, rows = RBAC_MODEL, RBAC_ROWS
    if domains:
        model = model.replace("g = _, _", "g = _, _, _").replace(
            "g(r.sub, p.sub)", "g(r.sub, p.sub, 'd1')"
        )
        rows = [*RBAC_ROWS[:2], PolicyRow("g", ("alice", "data2_admin", "d1"))]
    engine = PolicyEngine(model, rows, fast=False, cache_size=0)
    manager = engine._enforcer.get_role_manager()
    assert engine.enforce("alice", "data2", "read") is True  # known names still work
    size = (
        (len(manager.rm_map), len(manager.rm_map["d1"].all_roles))
        if domains
        else len(manager.all_roles)
    )
    for i in range(200):
        assert engine.enforce(f"stranger{i}", "data2", "read") is False
        assert engine.enforce("data2_admin", "data2", "read") is True  # g(x, x)
    after = (
        (len(manager.rm_map), len(manager.rm_map["d1"].all_roles))
        if domains
        else len(manager.all_roles)
    )
    assert after == size
    assert engine.enforce("alice", "data2", "read") is True


def test_unknown_domains_do_not_grow_the_pycasbin_fallback() -> None:
    model = (
        RBAC_MODEL.replace("r = sub, obj, act", "r = sub, dom, obj, act")
        .replace("g = _, _", "g = _, _, _")
        .replace("g(r.sub, p.sub)", "g(r.sub, p.sub, r.dom)")
    )
    rows = [*RBAC_ROWS[:2], PolicyRow("g", ("alice", "data2_admin", "d1"))]
    engine = PolicyEngine(model, rows, fast=False, cache_size=0)
    manager = engine._enforcer.get_role_manager()
    assert engine.enforce("alice", "d1", "data2", "read") is True
    known = set(manager.rm_map)
    for i in range(100):
        assert engine.enforce("alice", f"dom{i}", "data2", "read") is False
    assert set(manager.rm_map) == known
