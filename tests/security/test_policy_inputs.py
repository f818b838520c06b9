"""Hostile models and policy rows, end to end: init_app, reload, the watcher, databases, API, CLI.

The property: a clear error naming the place (model file, policy file and line, table and row
id), raised as a GuardError with no foreign exception chained to it; and on a reload, the
previous good policy stays in force with unchanged decisions. ``tests/test_csv.py`` checks the
row rules one by one on ``parse_policy``; here the same inputs go through the real entry points.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import flask
import pytest
import sqlalchemy as sa

from conftest import POLICIES
from flask_casbin_guard import CasbinGuard
from flask_casbin_guard.errors import GuardError, PolicyError
from flask_casbin_guard.pipeline import STATE_KEY
from flask_casbin_guard.store.schema import rule_table, version_table

MODEL_TEXT = (POLICIES / "rbac_model.conf").read_text()
GOOD_LINES = ["# good policy", "g, alice, manager", "p, manager, store:1, manager"]
GOOD_TAIL = ["p, bob, store:2, read"]
GOOD_POLICY = "\n".join([*GOOD_LINES, *GOOD_TAIL]) + "\n"
PROBES = list(product(("alice", "bob", "mallory"), ("store:1", "store:2"), ("manager", "read")))
ALLOWED = {("alice", "store:1", "manager"), ("bob", "store:2", "read")}
#: longest error message we accept: the input is the problem, it must not be echoed whole
MAX_MESSAGE = 500


def decisions(app: flask.Flask) -> dict[tuple[str, ...], bool]:
    guard: CasbinGuard = app.extensions["casbin_guard"]
    with app.app_context():
        return {probe: guard.enforce(*probe) for probe in PROBES}


def expected() -> dict[tuple[str, ...], bool]:
    return {probe: probe in ALLOWED for probe in PROBES}


def make_app(model: str | Path, policy: str | Path, **config: Any) -> flask.Flask:
    """A plain app with a guard loaded now (extension style)."""
    app = flask.Flask(__name__)
    app.config.update(
        TESTING=True, GUARD_AUTH=[], GUARD_MODEL=str(model), GUARD_POLICY=str(policy), **config
    )
    CasbinGuard(app)
    return app


def assert_clean(error: BaseException, *places: str) -> str:
    """A GuardError naming every place, short, one printable line, nothing foreign chained."""
    assert isinstance(error, GuardError), f"{type(error).__name__}: {error}"
    message = str(error)
    for place in places:
        assert place in message, f"{place!r} not in {message!r}"
    assert len(message) <= MAX_MESSAGE, f"{len(message)} characters"
    assert message.isprintable(), repr(message)
    # ``raise ... from None``: the printed traceback shows no exception from deep inside.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return message


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.conf"
    path.write_text(MODEL_TEXT)
    return path


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.csv"
    path.write_text(GOOD_POLICY)
    return path


# -- models ----------------------------------------------------------------------------------

MATCHER = "m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act"


def _without(section: str) -> bytes:
    start = MODEL_TEXT.index(f"[{section}]")
    end = MODEL_TEXT.find("\n\n", start)
    return (MODEL_TEXT[:start] + (MODEL_TEXT[end:] if end >= 0 else "")).encode()


def _matcher(text: str) -> bytes:
    return MODEL_TEXT.replace(MATCHER, text).encode()


BAD_MODELS = [
    pytest.param(b"", "no [request_definition]", id="empty"),
    pytest.param(b"\n\n   \n", "no [request_definition]", id="blank"),
    pytest.param(_without("request_definition"), "no [request_definition]", id="no-request"),
    pytest.param(_without("policy_definition"), "no [policy_definition]", id="no-policy"),
    pytest.param(_without("policy_effect"), "no [policy_effect]", id="no-effect"),
    pytest.param(_without("matchers"), "no [matchers]", id="no-matchers"),
    pytest.param(
        MODEL_TEXT.replace("r = sub", "r2 = sub").encode(), "request_definition", id="only-r2"
    ),
    pytest.param(
        MODEL_TEXT.replace("g = _, _", "g = a, b").encode(), "role definition 'g'", id="g-no-_"
    ),
    pytest.param(_matcher("m = g(r.sub, p.sub) && (r.obj == p.obj"), "does not parse", id="paren"),
    pytest.param(_matcher("m = r.obj === p.obj"), "does not parse", id="bad-operator"),
    pytest.param(_matcher("m = r.obj == p.obj &&"), "does not parse", id="dangling-and"),
    pytest.param(_matcher("m = x = r.obj"), "not a single expression", id="assignment"),
    pytest.param(_matcher("m = r.obj == p.object"), "'p.object' is not defined", id="p-token"),
    pytest.param(_matcher("m = r.object == p.obj"), "'r.object' is not defined", id="r-token"),
    pytest.param(
        MODEL_TEXT.replace("some(where (p.eft == allow))", "most(where (p.eft == allow))").encode(),
        "unsupported effect",
        id="unknown-effect",
    ),
    pytest.param(b"\x00\x01\x02 garbage \x89PNG\r\n\x1a\n", "line 1: not UTF-8", id="binary"),
    pytest.param(
        b"\x00\x01garbage\x7f\n[request_definition]\x00\n", "line 1", id="control-characters"
    ),
    pytest.param(
        MODEL_TEXT.replace("[matchers]", "# caf\xe9\n[matchers]").encode("latin-1"),
        "line 13: not UTF-8",
        id="latin-1",
    ),
]


@pytest.mark.parametrize(("content", "fragment"), BAD_MODELS)
def test_bad_model_fails_at_init_app_naming_the_file(
    tmp_path: Path, policy_file: Path, content: bytes, fragment: str
) -> None:
    model = tmp_path / "model.conf"
    model.write_bytes(content)
    with pytest.raises(GuardError) as caught:
        make_app(model, policy_file)
    assert_clean(caught.value, str(model), fragment)


def test_huge_model_file_loads_and_decides(tmp_path: Path, policy_file: Path) -> None:
    model = tmp_path / "model.conf"
    filler = "".join(f"# comment line {i} {'x' * 80}\n" for i in range(50_000))  # ~4.5 MB
    model.write_text(filler + MODEL_TEXT + filler)
    started = time.perf_counter()
    app = make_app(model, policy_file)
    assert time.perf_counter() - started < 10
    assert decisions(app) == expected()


def test_huge_matcher_is_refused_or_answers_correctly(tmp_path: Path, policy_file: Path) -> None:
    model = tmp_path / "model.conf"
    model.write_bytes(_matcher(MATCHER + " && r.act == p.act" * 2000))
    try:
        app = make_app(model, policy_file)
    except GuardError as error:  # a clear refusal is fine too
        assert_clean(error, str(model))
        return
    assert decisions(app) == expected()


def test_unknown_matcher_function_fails_closed_until_registered(
    tmp_path: Path, policy_file: Path
) -> None:
    # Functions may be registered after init_app (guard.add_function rebuilds the engine), so an
    # unknown one cannot be refused at load: every decision that reaches it must fail, not allow.
    model = tmp_path / "model.conf"
    model.write_bytes(_matcher("m = g(r.sub, p.sub) && sameObj(r.obj, p.obj) && r.act == p.act"))
    app = make_app(model, policy_file, GUARD_DECISION_CACHE_SIZE=0)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    with app.app_context():
        with pytest.raises(PolicyError, match="FunctionNotDefined") as caught:
            guard.enforce("alice", "store:1", "manager")
        assert "sameObj" not in str(caught.value)  # the matcher stays out of responses
        guard.add_function("sameObj", lambda a, b: a == b)
    assert decisions(app) == expected()


# -- CSV files -------------------------------------------------------------------------------

BAD_ROWS = [
    pytest.param(b"p, bob, store:2", "take 3 values, this one has 2", id="short"),
    pytest.param(b"p, bob, store:2, read, allow", "this one has 4", id="long"),
    pytest.param(b"p9, bob, store:2, read", "unknown policy type 'p9'", id="unknown-ptype"),
    pytest.param(b'p, "bob, eve", read', "values 1 to 2 are one quoted value", id="quoted-comma"),
    pytest.param(b'g, "alice, manager"', "values 1 to 2 are one quoted value", id="quoted-g"),
    pytest.param(b"p, 'bob, x, eve', read", "values 1 to 3 are one quoted", id="single-quoted"),
    pytest.param(b'p, bob, "a, ""b"", c", r', "values 2 to 4 are one quoted", id="rfc4180"),
    pytest.param(b'p, bob, "store:2", read', "value 2 is quoted", id="quoted"),
    pytest.param(b"p, f(bob, store:2, read", "unclosed '('", id="open-bracket"),
    pytest.param(b"p, bob, store:2 , re,ad", "this one has 4", id="comma-in-value"),
    pytest.param(b"p, " + b"b" * 256 + b", store:2, read", "longer than 255", id="256-chars"),
    pytest.param(b"p, " + b"b" * 1_000_000 + b", s, r", "longer than 255", id="1MB-value"),
    pytest.param(b"x" * 1_000_000, "unknown policy type 'xxxx", id="1MB-line"),
    pytest.param(b"p, b\x00ob, store:2, read", "value 1 contains a control", id="nul"),
    pytest.param(b"p, bob, store:2, re\x1bad", "value 3 contains a control", id="escape"),
    pytest.param(b"p, bob, st\x7fore:2, read", "value 2 contains a control", id="delete"),
    pytest.param("p, b\u2028ob, x, read".encode(), "value 1 contains a control", id="u2028"),
    pytest.param("p, bob\u202e, x, read".encode(), "value 1 contains a control", id="bidi"),
    pytest.param(b"\x00", "unknown policy type '\\x00'", id="nul-line"),
    pytest.param(b"p, b\xffob, store:2, read", "line 3: not UTF-8", id="not-utf8"),
    pytest.param("p, café, x, read".encode("latin-1"), "line 3: not UTF-8", id="latin-1"),
    pytest.param(
        b"\xef\xbb\xbfp, bob, store:2, read", "unknown policy type '\\ufeffp'", id="bom-3"
    ),
]


def bad_policy(line: bytes) -> bytes:
    """The good policy with ``line`` as line 3."""
    head = [line.encode() for line in GOOD_LINES[:2]]
    rest = [line.encode() for line in (*GOOD_LINES[2:], *GOOD_TAIL)]
    return b"\n".join([*head, line, *rest]) + b"\n"


@pytest.mark.parametrize(("line", "fragment"), BAD_ROWS)
def test_bad_csv_fails_at_init_app_naming_file_and_line(
    model_file: Path, tmp_path: Path, line: bytes, fragment: str
) -> None:
    policy = tmp_path / "bad.csv"
    policy.write_bytes(bad_policy(line))
    with pytest.raises(PolicyError) as caught:
        make_app(model_file, policy)
    assert_clean(caught.value, f"{policy}, line 3: ", fragment)


@pytest.mark.parametrize(("line", "fragment"), BAD_ROWS)
def test_bad_csv_on_reload_keeps_the_previous_policy(
    model_file: Path, policy_file: Path, line: bytes, fragment: str
) -> None:
    app = make_app(model_file, policy_file)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    before = guard.policies.holder.engine
    assert decisions(app) == expected()
    policy_file.write_bytes(bad_policy(line))
    for reload in (guard.policies.reload, guard.reload_policy):
        with pytest.raises(PolicyError) as caught:
            reload()
        assert_clean(caught.value, f"{policy_file}, line 3: ", fragment)
        assert guard.policies.holder.engine is before
        assert decisions(app) == expected()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\xef\xbb\xbf" + GOOD_POLICY.encode(), id="bom"),
        pytest.param(GOOD_POLICY.replace("\n", "\r\n").encode(), id="crlf"),
        pytest.param(b"\xef\xbb\xbf" + GOOD_POLICY.replace("\n", "\r\n").encode(), id="bom-crlf"),
        pytest.param(GOOD_POLICY.rstrip("\n").encode(), id="no-final-newline"),
        pytest.param(GOOD_POLICY.replace("\n", " \t\n\n  # c\n").encode(), id="spaces-comments"),
        pytest.param(b"\xef\xbb\xbf# comment first\n" + GOOD_POLICY.encode(), id="bom-comment"),
    ],
)
def test_harmless_encodings_load_the_same_policy(
    model_file: Path, tmp_path: Path, content: bytes
) -> None:
    policy = tmp_path / "variant.csv"
    policy.write_bytes(content)
    app = make_app(model_file, policy)
    assert decisions(app) == expected()
    guard: CasbinGuard = app.extensions["casbin_guard"]
    assert (
        guard.policies.list()
        == make_app(model_file, _good(tmp_path)).extensions["casbin_guard"].policies.list()
    )
    # A change through the API keeps the file readable and the rules intact.
    assert guard.policies.add("p", "carol", "store:3", "read")
    assert guard.policies.reload(force=True)
    assert guard.policies.remove("p", "manager", "store:1", "manager")
    assert ("p", "carol", "store:3", "read") in make_app(model_file, policy).extensions[
        "casbin_guard"
    ].policies.list()


def _good(tmp_path: Path) -> Path:
    path = tmp_path / "reference.csv"
    path.write_text(GOOD_POLICY)
    return path


# -- values with quotes and brackets round-trip exactly ---------------------------------------

ROUND_TRIP = [
    ("p", '"bob', "store:1", "read"),  # one quote: a literal character, as pycasbin reads it
    ("p", "bob", "store:2'", "read"),
    ("p", "o'brien", "store:1", "read"),
    ("p", 'say"hi"', "store:1", "read"),
    ("p", 'r.sub == "alice"', "store:1", "read"),
    ("p", "keyMatch(r.obj, '/a, b')", "store:1", "read"),
    ("p", "r.sub in ['a', 'b']", "store:1", "read"),
    ("g", "dan", "it's-a-role"),
]


def test_quotes_and_brackets_inside_values_round_trip_through_csv(
    model_file: Path, policy_file: Path
) -> None:
    app = make_app(model_file, policy_file)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    for rule in ROUND_TRIP:
        assert guard.policies.add(*rule)
    fresh = make_app(model_file, policy_file).extensions["casbin_guard"]
    assert set(ROUND_TRIP) <= set(fresh.policies.list())
    assert fresh.policies.list() == guard.policies.list()


def test_quotes_and_brackets_round_trip_through_a_database_and_export(
    model_file: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    app = make_app(model_file, url)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    for rule in ROUND_TRIP:
        assert guard.policies.add(*rule)
    exported = tmp_path / "exported.csv"
    guard.policies.export_csv(exported)
    copy = make_app(model_file, exported).extensions["casbin_guard"]
    assert copy.policies.list() == guard.policies.list() == [tuple(r) for r in ROUND_TRIP]


# -- the Python API --------------------------------------------------------------------------

BAD_API_RULES = [
    pytest.param(("p", "bob", "store:2,store:3", "read"), "comma outside brackets", id="comma"),
    pytest.param(("p", '"bob, eve"', "x", "read"), "is quoted", id="quoted-comma"),
    pytest.param(("p", "bob\nmallory", "x", "read"), "control character", id="newline"),
    pytest.param(("p", "bob\r\nERROR forged", "x", "read"), "control character", id="crlf"),
    pytest.param(("p", "b\x00ob", "x", "read"), "control character", id="nul"),
    pytest.param(("p", "b" * 256, "x", "read"), "longer than 255", id="256-chars"),
    pytest.param(("p", "b" * 1_000_000, "x", "read"), "longer than 255", id="1MB"),
    pytest.param(("p", "", "x", "read"), "is empty", id="empty"),
    pytest.param(("p", " bob", "x", "read"), "leading or trailing spaces", id="space"),
    pytest.param(("p", "bob", "x"), "take 3 values", id="short"),
    pytest.param(("p9", "bob", "x", "read"), "unknown policy type", id="ptype"),
    pytest.param(("\ufeffp", "bob", "x", "read"), "unknown policy type", id="bom-ptype"),
]


@pytest.fixture(params=["csv", "sqlite"])
def api_app(request: pytest.FixtureRequest, model_file: Path, policy_file: Path) -> flask.Flask:
    if request.param == "csv":
        return make_app(model_file, policy_file)
    url = f"sqlite:///{policy_file.with_suffix('.db')}"
    app = make_app(model_file, url)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    guard.policies.import_csv(policy_file)
    return app


@pytest.mark.parametrize(("rule", "fragment"), BAD_API_RULES)
def test_python_api_refuses_bad_rules_and_changes_nothing(
    api_app: flask.Flask, rule: tuple[str, ...], fragment: str
) -> None:
    guard: CasbinGuard = api_app.extensions["casbin_guard"]
    store = guard.policies.store
    assert store is not None
    stored, version = store.export(), store.version()
    with pytest.raises(PolicyError) as caught:
        guard.policies.add(*rule)
    assert_clean(caught.value, "invalid rule", fragment)
    with pytest.raises(PolicyError):  # all or nothing: the good row is not added either
        guard.policies.change(added=[_row("p", "carol", "store:3", "read"), _row(*rule)])
    assert store.export() == stored and store.version() == version
    assert decisions(api_app) == expected()


def _row(ptype: str, *values: str) -> Any:
    from flask_casbin_guard.store.csv import PolicyRow

    return PolicyRow(ptype, values)


# -- the CLI ---------------------------------------------------------------------------------


CLI_IMPORT = [
    p
    for p in BAD_ROWS
    if p.id
    in {"short", "unknown-ptype", "quoted-comma", "open-quote", "nul", "not-utf8", "1MB-line"}
]


@pytest.mark.parametrize(("line", "fragment"), CLI_IMPORT)
@pytest.mark.parametrize("replace", [False, True], ids=["add", "replace"])
def test_cli_import_refuses_a_bad_file_naming_file_and_line(
    model_file: Path, policy_file: Path, tmp_path: Path, line: bytes, fragment: str, replace: bool
) -> None:
    app = make_app(model_file, policy_file)
    bad = tmp_path / "incoming.csv"
    bad.write_bytes(bad_policy(line))
    args = ["policy", "import", str(bad), *(["--replace"] if replace else [])]
    result = app.test_cli_runner().invoke(args=["guard", *args])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"Error: {bad}, line 3: " in result.output and fragment in result.output
    assert len(result.output) < 2 * MAX_MESSAGE
    assert policy_file.read_text() == GOOD_POLICY
    assert decisions(app) == expected()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        pytest.param(["p", "bob", "a,b", "read"], "comma outside brackets", id="comma"),
        pytest.param(["p", "bob", "x\x1b[2J", "read"], "control character", id="escape"),
        pytest.param(["p", "bob\nx", "x", "read"], "control character", id="newline"),
        pytest.param(["p", "b" * 300, "x", "read"], "longer than 255", id="long"),
        pytest.param(["p", "bob", "x"], "take 3 values", id="short"),
        pytest.param(["p9", "bob", "x", "read"], "unknown policy type", id="ptype"),
    ],
)
def test_cli_add_refuses_bad_values(
    model_file: Path, policy_file: Path, values: list[str], fragment: str
) -> None:
    app = make_app(model_file, policy_file)
    result = app.test_cli_runner().invoke(args=["guard", "policy", "add", *values])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: invalid rule ") and fragment in result.output
    assert result.output.count("\n") == 1  # one line: a value's newline is escaped
    assert policy_file.read_text() == GOOD_POLICY
    assert decisions(app) == expected()


def test_cli_validate_reports_the_bad_line_and_keeps_serving(
    model_file: Path, policy_file: Path
) -> None:
    app = make_app(model_file, policy_file)
    policy_file.write_bytes(bad_policy(b'p, "bob, eve", read'))
    result = app.test_cli_runner().invoke(args=["guard", "policy", "validate"])
    assert result.exit_code == 1
    assert f"Error: {policy_file}, line 3: values 1 to 2 are one quoted value" in result.output
    assert decisions(app) == expected()


# -- databases: rows written by another program ---------------------------------------------


def insert_raw(url: str, *records: tuple[Any, ...]) -> list[int]:
    """Store records as given, bypassing every check, and bump the version as a writer would."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    rules, versions = rule_table(metadata, "casbin_rule"), version_table(metadata)
    names = ["ptype", "v0", "v1", "v2", "v3", "v4", "v5"]
    ids = []
    try:
        with engine.begin() as connection:
            for record in records:
                padded = record + (None,) * (7 - len(record))
                values = dict(zip(names, padded, strict=True))
                ids.append(
                    connection.execute(sa.insert(rules).values(values)).inserted_primary_key[0]
                )
            bump_version(connection, versions)
    finally:
        engine.dispose()
    return ids


def bump_version(connection: sa.Connection, versions: sa.Table) -> None:
    """What a guard write does after its rows: watchers then reload."""
    connection.execute(
        sa.update(versions)
        .where(versions.c.name == "casbin_rule")
        .values(version=versions.c.version + 1)
    )


def delete_raw(url: str) -> None:
    """Delete every row after the good policy (ids above 3), bumping the version."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    rules, versions = rule_table(metadata, "casbin_rule"), version_table(metadata)
    try:
        with engine.begin() as connection:
            connection.execute(sa.delete(rules).where(rules.c.id > 3))
            bump_version(connection, versions)
    finally:
        engine.dispose()


def seeded(url: str, tmp_path: Path) -> str:
    """``url`` holding the good policy (ids 1 to 3), written through the guard."""
    app = make_app(POLICIES / "rbac_model.conf", url)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    seed = tmp_path / "seed.csv"
    seed.write_text(GOOD_POLICY)
    guard.policies.import_csv(seed)
    assert guard.policies.store is not None
    guard.policies.store.close()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """``(backend, url)`` of a database holding the good policy."""
    if request.param == "sqlite":
        return "sqlite", seeded(f"sqlite:///{tmp_path / 'policy.db'}", tmp_path)
    return "postgresql", seeded(str(request.getfixturevalue("postgres_url")), tmp_path)


# (record, fragment, backends that can store it: PostgreSQL refuses NUL and >255 characters)
BAD_RECORDS = [
    pytest.param(("p", "bob", "x", "read\u2028"), "value 3 contains a control", "*", id="u2028"),
    pytest.param(("p", '"bob, eve"', "x", "read"), "value 1 is quoted", "*", id="quoted-comma"),
    pytest.param(("p", "bob", "a,b", "read"), "comma outside brackets", "*", id="comma"),
    pytest.param(("p", "bob\nmallory", "x", "read"), "control character", "*", id="newline"),
    pytest.param(("p", "bob", "x", "re\x1bad"), "value 3 contains a control", "*", id="escape"),
    pytest.param(("p", "b\x00ob", "x", "read"), "control character", "sqlite", id="nul"),
    pytest.param(("p", "b" * 300, "x", "read"), "longer than 255", "sqlite", id="300-chars"),
    pytest.param(("\ufeffp", "bob", "x", "read"), "unknown policy type", "*", id="bom-ptype"),
    pytest.param(("p", "bob", None, "read"), "NULL value comes before", "*", id="null-gap"),
    pytest.param(("g", "mallory", "manager", "x"), "'g' rows take 2 values", "*", id="g-arity"),
]


def check_bad_record(
    backend: str, url: str, record: tuple[Any, ...], fragment: str, backends: str
) -> None:
    """A serving app keeps its policy on reload; a new one refuses to start; both name the id."""
    if backends not in ("*", backend):  # then the database itself refuses the value
        with pytest.raises(sa.exc.DBAPIError):
            insert_raw(url, record)
        return
    app = make_app(POLICIES / "rbac_model.conf", url)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    before = guard.policies.holder.engine
    first = insert_raw(url, record, ("g", "mallory", "manager"))[0]
    for reload in (guard.policies.reload, guard.reload_policy):
        with pytest.raises(PolicyError) as caught:
            reload()
        assert_clean(caught.value, f"casbin_rule id {first}: ", fragment)
        assert guard.policies.holder.engine is before
        assert decisions(app) == expected()  # mallory did not become a manager
    with pytest.raises(PolicyError) as caught:
        make_app(POLICIES / "rbac_model.conf", url)
    assert_clean(caught.value, f"casbin_rule id {first}: ", fragment)
    delete_raw(url)
    assert guard.policies.reload()
    assert decisions(app) == expected()
    assert guard.policies.store is not None
    guard.policies.store.close()


@pytest.mark.parametrize(("record", "fragment", "backends"), BAD_RECORDS)
def test_bad_sqlite_row_is_refused_naming_its_id(
    tmp_path: Path, record: tuple[Any, ...], fragment: str, backends: str
) -> None:
    url = seeded(f"sqlite:///{tmp_path / 'policy.db'}", tmp_path)
    check_bad_record("sqlite", url, record, fragment, backends)


@pytest.mark.services
def test_bad_postgresql_rows_are_refused_naming_their_id(postgres_url: str, tmp_path: Path) -> None:
    # One database for every record: creating one per case would cost a second each.
    url = seeded(postgres_url, tmp_path)
    for case in BAD_RECORDS:
        record, fragment, backends = case.values
        check_bad_record("postgresql", url, record, fragment, backends)  # type: ignore[arg-type]


def test_watcher_keeps_the_previous_policy_and_recovers(
    database: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = database
    app = make_app(POLICIES / "rbac_model.conf", url, GUARD_WATCHER="poll:20ms")
    state = app.extensions[STATE_KEY]
    state.ensure_ready()  # starts the watcher, as the first request would
    caplog.set_level(logging.ERROR, logger="flask_casbin_guard")
    insert_raw(url, ("p", "mallory", "store:1,store:2", "read"), ("g", "mallory", "manager"))
    message = _wait_for(lambda: _reload_errors(caplog))
    assert "policy reload failed, keeping the previous policy" in message
    assert "casbin_rule id 4: value 2 contains a comma outside brackets" in message
    assert decisions(app) == expected()
    time.sleep(0.1)  # several more polls of the same bad version: reported once
    assert len(_reload_errors(caplog)) == 1
    delete_raw(url)  # the bad rows are gone: the watcher loads the good policy again
    insert_raw(url, ("p", "mallory", "store:2", "read"))
    guard: CasbinGuard = app.extensions["casbin_guard"]
    _wait_for(lambda: guard.policies.list("p")[-1] == ("p", "mallory", "store:2", "read"))
    with app.app_context():
        assert guard.enforce("mallory", "store:2", "read")
        assert not guard.enforce("mallory", "store:1", "manager")


def _reload_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "policy reload failed" in r.getMessage()]


def _wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found[0] if isinstance(found, list) else found
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_non_utf8_bytes_in_sqlite_are_a_clean_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    app = make_app(POLICIES / "rbac_model.conf", url)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    assert guard.policies.add("p", "bob", "store:2", "read")
    with sqlite3.connect(tmp_path / "policy.db") as connection:  # as another program could
        connection.execute(
            "INSERT INTO casbin_rule (ptype, v0, v1, v2) "
            "VALUES ('p', CAST(x'62ff6f62' AS TEXT), 'store:2', 'read')"
        )
    with pytest.raises(PolicyError) as caught:
        guard.policies.reload(force=True)
    # SQLite's driver fails on the whole query: the column is named, not the row id.
    assert_clean(caught.value, url, "Could not decode to UTF-8 column 'v0'")
    with app.app_context():
        assert guard.enforce("bob", "store:2", "read")
    with pytest.raises(PolicyError) as caught:
        make_app(POLICIES / "rbac_model.conf", url)
    assert_clean(caught.value, url, "UTF-8")
