"""DatabaseStore on a real SQLite file and a real PostgreSQL database (one fresh database each).

The PostgreSQL half skips when the server is absent, unless GUARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path
from typing import Any

import casbin
import pytest
import sqlalchemy as sa
import sqlalchemy_adapter
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from flask_casbin_guard.authz.engine import PolicyEngine
from flask_casbin_guard.errors import ConfigurationError, PolicyError
from flask_casbin_guard.store.csv import PolicyRow, read_policy_file
from flask_casbin_guard.store.csvstore import write_policy_file
from flask_casbin_guard.store.database import DatabaseStore
from flask_casbin_guard.store.schema import VERSION_TABLE, rule_table, version_table
from helpers import DOMAIN_MODEL

POLICIES = Path(__file__).parent / "policies"
RBAC_MODEL = POLICIES / "rbac_model.conf"
ARITIES = {"p": 3, "g": 2}

Record = tuple[Any, ...]


def p(*values: str) -> PolicyRow:
    return PolicyRow("p", values)


def g(*values: str) -> PolicyRow:
    return PolicyRow("g", values)


# The four rules of casbin.md §2.1: sqlalchemy-adapter's remove_policies(first two) empties the DB.
CROSS = [p("alice", "data1", "read"), p("bob", "data2", "write")]
KEPT = [p("alice", "data2", "write"), p("bob", "data1", "read")]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A real database: a SQLite file, or a PostgreSQL database created for this test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'policy.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    """A separate engine on the same database, to look at (or tamper with) the raw rows."""
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def open_store(url: str) -> Iterator[Callable[..., DatabaseStore]]:
    """Open stores on ``url``; all are closed at teardown, before the database is dropped."""
    stores: list[DatabaseStore] = []

    def open_(database: str | sa.Engine | None = None, **options: Any) -> DatabaseStore:
        options.setdefault("arities", ARITIES)
        store = DatabaseStore(url if database is None else database, **options)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., DatabaseStore]) -> DatabaseStore:
    return open_store()


def raw(engine: sa.Engine, table: str = "casbin_rule") -> list[Record]:
    """Every stored record ``(id, ptype, v0..v5)`` in id order, NULLs included."""
    rules = rule_table(sa.MetaData(), table)
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.select(rules).order_by(rules.c.id))]


def values_of(records: list[Record]) -> list[Record]:
    return [record[1:] for record in records]


def insert_raw(engine: sa.Engine, *records: Record) -> None:
    """Store records as given, bypassing every check (as another program could)."""
    rules = rule_table(sa.MetaData(), "casbin_rule")
    names = ["ptype", "v0", "v1", "v2", "v3", "v4", "v5"]
    with engine.begin() as connection:
        for record in records:
            padded = record + (None,) * (7 - len(record))
            connection.execute(sa.insert(rules).values(dict(zip(names, padded, strict=True))))


def stored(row: PolicyRow) -> Record:
    """``row`` as the ``(ptype, v0..v5)`` columns sqlalchemy-adapter would write."""
    return (row.ptype, *row.values) + (None,) * (6 - len(row.values))


# -- schema and connection ------------------------------------------------------------------


def test_creates_the_sqlalchemy_adapter_schema(store: DatabaseStore, engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("casbin_rule")}
    assert list(columns) == ["id", "ptype", "v0", "v1", "v2", "v3", "v4", "v5"]
    assert isinstance(columns["id"]["type"], sa.Integer)
    assert inspector.get_pk_constraint("casbin_rule")["constrained_columns"] == ["id"]
    for name in ["ptype", "v0", "v1", "v2", "v3", "v4", "v5"]:
        assert isinstance(columns[name]["type"], sa.String)
        assert columns[name]["type"].length == 255
        assert columns[name]["nullable"]
    indexes = inspector.get_indexes("casbin_rule")
    assert [index["column_names"] for index in indexes] == [["ptype", "v0", "v1"]]
    with engine.connect() as connection:
        assert connection.execute(sa.select(version_table(sa.MetaData()))).all() == [
            ("casbin_rule", 0)
        ]
    assert store.version() == 0
    assert store.load() == []


def test_opening_again_keeps_rows_and_version(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    first = open_store()
    first.add([p("alice", "data1", "read")])
    second = open_store(engine)  # an Engine works as well as a URL
    assert second.load() == [p("alice", "data1", "read")]
    assert second.version() == first.version() == 1


def test_adds_the_index_to_a_table_sqlalchemy_adapter_created(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    sqlalchemy_adapter.Adapter(engine)
    assert sa.inspect(engine).get_indexes("casbin_rule") == []
    open_store()
    assert len(sa.inspect(engine).get_indexes("casbin_rule")) == 1


def test_custom_table_has_its_own_version_and_no_casbin_rule(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    custom = open_store(table_name="my_rules")
    assert set(sa.inspect(engine).get_table_names()) == {"my_rules", VERSION_TABLE}
    custom.add([p("alice", "data1", "read")])
    default = open_store()
    assert default.load() == [] and default.version() == 0
    assert custom.version() == 1
    assert values_of(raw(engine, "my_rules")) == [stored(p("alice", "data1", "read"))]


def test_a_table_of_another_shape_is_refused(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE casbin_rule (id INTEGER PRIMARY KEY, rule TEXT)"))
    with pytest.raises(ConfigurationError, match="no column ptype, v0"):
        open_store()


def test_without_create_a_missing_table_is_a_policy_error(
    open_store: Callable[..., DatabaseStore],
) -> None:
    store = open_store(create=False)
    with pytest.raises(PolicyError, match="cannot load the policy in ") as caught:
        store.load()
    assert isinstance(caught.value.original_error, sa.exc.SQLAlchemyError)


def test_sqlite_file_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    store = DatabaseStore(f"sqlite:///{tmp_path / 'p.db'}", ARITIES)
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_memory_sqlite_is_one_database_for_every_thread() -> None:
    store = DatabaseStore("sqlite://", ARITIES)
    rows = [p(f"user{n}", "data", "read") for n in range(40)]
    threads = [threading.Thread(target=store.add, args=([row],)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen: list[list[PolicyRow]] = []
    reader = threading.Thread(target=lambda: seen.append(store.load()))
    reader.start()
    reader.join()
    assert sorted(seen[0], key=str) == sorted(rows, key=str)
    assert store.version() == 40
    store.close()


def test_memory_sqlite_engine_needs_static_pool() -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(ConfigurationError, match="StaticPool"):
        DatabaseStore(engine, ARITIES)
    shared = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    assert DatabaseStore(shared, ARITIES).add([g("alice", "admin")]) == [g("alice", "admin")]
    engine.dispose()
    shared.dispose()


def test_more_values_than_columns_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'p' takes 7 values"):
        DatabaseStore("sqlite://", {"p": 7})


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("garbage", "invalid database URL 'garbage'"),
        ("postgresql://guard:s3cret@db:port/x", "invalid database URL 'postgresql://guard:***@"),
        ("nosuchdb://guard:s3cret@db/x", "cannot use database URL 'nosuchdb://guard:***@db/x'"),
        ("postgresql+psycopg2://guard:s3cret@db/x", "No module named 'psycopg2'"),
    ],
)
def test_bad_urls_are_configuration_errors_without_password(database: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DatabaseStore(database, ARITIES)
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_unreachable_database_is_a_policy_error_without_password() -> None:
    database = "postgresql://guard:s3cret@127.0.0.1:1/policy"  # nothing listens on port 1
    with pytest.raises(PolicyError) as caught:
        DatabaseStore(database, ARITIES)
    message = str(caught.value)
    assert message.startswith(
        "cannot create the schema in postgresql+psycopg://guard:***@127.0.0.1:1/policy: "
        "OperationalError: "
    )
    assert "s3cret" not in message
    assert isinstance(caught.value.original_error, sa.exc.OperationalError)
    store = DatabaseStore(database, ARITIES, create=False)
    assert "s3cret" not in repr(store) and "***" in repr(store)
    assert store.engine.dialect.driver == "psycopg"  # postgresql:// means psycopg 3
    with pytest.raises(PolicyError) as caught:
        store.add([p("alice", "data1", "read")])
    assert "s3cret" not in str(caught.value)


# -- loading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (("x", "alice", "data1", "read"), "unknown policy type 'x'"),
        (("p", "alice", "data1"), "'p' rows take 3 values, this one has 2"),
        (("p", "alice", None, "read"), "a NULL value comes before a non-NULL one"),
        (("p", "alice", "report,2024", "read"), "value 2 contains a comma outside brackets"),
        (("p", "alice", "", "read"), "value 2 is empty"),
        (("p", " alice", "data1", "read"), "value 1 has leading or trailing spaces"),
        ((None, "alice", "data1", "read"), "ptype is NULL"),
        (("p",), "no values"),
    ],
)
def test_load_names_the_id_of_an_invalid_row(
    store: DatabaseStore, engine: sa.Engine, record: Record, reason: str
) -> None:
    insert_raw(engine, ("p", "bob", "data2", "write"), record)
    with pytest.raises(PolicyError) as caught:
        store.load()
    assert str(caught.value).startswith("casbin_rule id 2: ")
    assert reason in str(caught.value)


def test_load_checks_against_the_arities_given(store: DatabaseStore) -> None:
    store.add([p("alice", "data1", "read"), g("alice", "admin")])
    with pytest.raises(PolicyError, match="id 2: unknown policy type 'g'"):
        store.load({"p": 3})
    assert store.load_versioned({"p": 3, "g": 2}) == (1, store.load())


def test_export_needs_no_model(store: DatabaseStore, engine: sa.Engine) -> None:
    insert_raw(engine, ("p", "alice", "data1", "read"), ("p2", "a", "b", "c", "d"))
    assert store.export() == [p("alice", "data1", "read"), PolicyRow("p2", ("a", "b", "c", "d"))]
    with pytest.raises(PolicyError, match="id 2: unknown policy type 'p2'"):
        store.load()
    insert_raw(engine, ("p", "alice", None, "read"))
    with pytest.raises(PolicyError, match="id 3: a NULL value"):
        store.export()


# -- writing ------------------------------------------------------------------------------


def test_round_trip(store: DatabaseStore, engine: sa.Engine) -> None:
    rows = [
        p("alice", "/data/*", "read"),
        g("alice", "admin"),
        p("admin", "keyMatch(r.obj, '/x/*')", "(GET)|(POST)"),  # commas inside brackets survive
        p("bob", "data2", "write"),
    ]
    assert store.add(rows) == rows
    assert store.load() == rows
    assert store.export() == rows
    assert store.load_versioned() == (1, rows)
    # Unused value columns are NULL, as sqlalchemy-adapter writes them.
    assert values_of(raw(engine)) == [stored(row) for row in rows]


def test_empty_writes_do_nothing(store: DatabaseStore) -> None:
    assert store.add([]) == [] and store.remove([]) == []
    store.update([], [])
    assert store.import_rows([]) == 0
    assert store.version() == 0


def test_add_skips_stored_rows_and_repeats(store: DatabaseStore, engine: sa.Engine) -> None:
    a, b, c = p("alice", "data1", "read"), p("bob", "data2", "write"), g("bob", "admin")
    assert store.add([a, b, a]) == [a, b]
    assert store.add([b, c, c]) == [c]
    assert store.add([a]) == []
    assert values_of(raw(engine)) == [stored(a), stored(b), stored(c)]
    assert store.version() == 2  # the third add changed nothing


BAD_ROWS = [
    pytest.param(PolicyRow("x", ("a", "b", "c")), "unknown policy type 'x'", id="ptype"),
    pytest.param(p("alice", "data1"), "'p' rows take 3 values, this one has 2", id="arity"),
    pytest.param(p("alice", "", "read"), "value 2 is empty", id="empty"),
    pytest.param(p("alice", "a,b", "read"), "comma outside brackets", id="separator"),
    pytest.param(p("alice", "x" * 256, "read"), "longer than 255 characters", id="length"),
    pytest.param(p("alice", "data\n1", "read"), "control character", id="control"),
    pytest.param(p("alice", '"data1"', "read"), "is quoted", id="quoted"),
    pytest.param(("p", "alice", "data1", "read"), "expected a PolicyRow, got tuple", id="type"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_ROWS)
def test_an_invalid_row_in_a_batch_writes_nothing(
    store: DatabaseStore, engine: sa.Engine, bad: PolicyRow, reason: str
) -> None:
    store.add([g("carol", "admin")])
    before = raw(engine)
    with pytest.raises(PolicyError) as caught:
        store.add([p("alice", "data1", "read"), bad, p("bob", "data2", "write")])
    assert str(caught.value).startswith("row 2: ")
    assert reason in str(caught.value)
    assert raw(engine) == before
    assert store.version() == 1


OPERATIONS: dict[str, Callable[[DatabaseStore, PolicyRow], object]] = {
    "remove": lambda store, bad: store.remove([g("carol", "admin"), bad]),
    "update": lambda store, bad: store.update([g("carol", "admin"), KEPT[0]], [CROSS[0], bad]),
    "replace_all": lambda store, bad: store.replace_all([CROSS[0], bad]),
    "import_rows": lambda store, bad: store.import_rows(iter([CROSS[0], bad]), batch_size=1),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_write_validates_before_storing(
    store: DatabaseStore, engine: sa.Engine, operation: str
) -> None:
    store.add([g("carol", "admin"), KEPT[0]])
    before = raw(engine)
    with pytest.raises(PolicyError, match="row 2: value 2 is longer than 255"):
        OPERATIONS[operation](store, p("alice", "x" * 256, "read"))
    assert raw(engine) == before
    assert store.version() == 1


def poisoned_table(engine: sa.Engine) -> None:
    """An existing casbin_rule table whose database refuses ``v1 = 'poison'``: a database error
    that validation cannot foresee, raised in the middle of a batch."""
    metadata = sa.MetaData()
    rules = rule_table(metadata, "casbin_rule")
    rules.append_constraint(sa.CheckConstraint("v1 IS NULL OR v1 <> 'poison'", name="no_poison"))
    metadata.create_all(engine)


def test_a_database_error_mid_import_rolls_back_every_batch(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    poisoned_table(engine)
    store = open_store()
    store.add([g("carol", "admin")])
    before = raw(engine)
    rows = (p(f"user{n}", "poison" if n == 15_000 else "data", "read") for n in range(1, 20_001))
    done: list[int] = []
    with pytest.raises(PolicyError) as caught:
        store.import_rows(rows, batch_size=5000, progress=done.append)
    assert done == [5000, 10_000]  # two batches were written before the third one failed
    assert "cannot import rows in " in str(caught.value)
    assert isinstance(caught.value.original_error, sa.exc.IntegrityError)
    assert raw(engine) == before
    assert store.version() == 1
    with pytest.raises(PolicyError, match="cannot add rows in .*no_poison"):
        store.add([p("alice", "data1", "read"), p("bob", "poison", "read")])
    assert raw(engine) == before


@pytest.mark.services
def test_postgresql_length_error_mid_batch_rolls_back(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    metadata = sa.MetaData()
    rules = rule_table(metadata, "casbin_rule")
    rules.c.v2.type.length = 8  # an older, narrower table: PostgreSQL enforces the length
    metadata.create_all(engine)
    store = DatabaseStore(postgres_url, ARITIES)
    with pytest.raises(PolicyError, match="StringDataRightTruncation") as caught:
        store.add([p("alice", "data1", "read"), p("bob", "data2", "write-all-day")])
    assert isinstance(caught.value.original_error, sa.exc.DataError)
    assert raw(engine) == [] and store.version() == 0
    store.close()
    engine.dispose()


def test_remove_deletes_exactly_the_given_rows(store: DatabaseStore, engine: sa.Engine) -> None:
    store.add(CROSS + KEPT)
    assert store.remove(CROSS) == CROSS
    assert values_of(raw(engine)) == [stored(row) for row in KEPT]
    assert [record[0] for record in raw(engine)] == [3, 4]
    assert store.load() == KEPT
    assert store.version() == 2


def test_remove_matches_unused_columns_as_null(store: DatabaseStore, engine: sa.Engine) -> None:
    insert_raw(engine, ("g", "alice", "admin", "domain1"), ("g", "alice", "admin"))
    assert store.remove([g("alice", "admin")]) == [g("alice", "admin")]
    assert values_of(raw(engine)) == [("g", "alice", "admin", "domain1", None, None, None)]


def test_remove_deletes_every_stored_copy(store: DatabaseStore, engine: sa.Engine) -> None:
    insert_raw(engine, stored(CROSS[0]), stored(KEPT[0]), stored(CROSS[0]))
    assert store.remove([CROSS[0], CROSS[0]]) == [CROSS[0]]
    assert values_of(raw(engine)) == [stored(KEPT[0])]


def test_removing_absent_rows_changes_nothing(store: DatabaseStore) -> None:
    store.add(KEPT)
    assert store.remove(CROSS) == []
    assert store.load() == KEPT and store.version() == 1


def test_update_rewrites_in_place(store: DatabaseStore, engine: sa.Engine) -> None:
    a, b, c, d = CROSS + KEPT
    store.add([a, b, c])
    store.update([b], [d])
    assert raw(engine) == [(1, *stored(a)), (2, *stored(d)), (3, *stored(c))]
    assert store.version() == 2


def test_update_with_duplicates_present(store: DatabaseStore, engine: sa.Engine) -> None:
    a, b, c, new = CROSS + KEPT
    insert_raw(engine, stored(a), stored(b), stored(a), stored(c))
    store.update([a], [new])
    # The first copy takes the new values in place; the other copy goes; nothing else moves.
    assert raw(engine) == [(1, *stored(new)), (2, *stored(b)), (4, *stored(c))]


def test_update_to_a_stored_row_creates_no_duplicate(
    store: DatabaseStore, engine: sa.Engine
) -> None:
    a, b = CROSS
    store.add([a, b])
    store.update([a], [b])
    assert raw(engine) == [(2, *stored(b))]


def test_update_pairs_apply_in_order(store: DatabaseStore) -> None:
    a, b, c, d = CROSS + KEPT
    store.add([a, d])
    store.update([a, b], [b, c])  # a -> b, then that b -> c
    assert store.load() == [c, d]


def test_update_fails_whole_when_an_old_row_is_missing(
    store: DatabaseStore, engine: sa.Engine
) -> None:
    a, b, c, d = CROSS + KEPT
    store.add([a])
    before = raw(engine)
    with pytest.raises(PolicyError, match="old row 2 is not stored: p, bob, data2, write"):
        store.update([a, b], [c, d])
    assert raw(engine) == before and store.version() == 1
    with pytest.raises(PolicyError, match="as many new rows as old ones"):
        store.update([a], [c, d])
    store.update([a], [a])  # nothing to change: the version stays
    assert store.version() == 1


def test_remove_filtered(store: DatabaseStore) -> None:
    rows = [
        p("alice", "data1", "read"),
        p("alice", "data2", "write"),
        p("bob", "data1", "read"),
        p("bob", "data1", "write"),
        g("alice", "admin"),
    ]
    store.add(rows)
    assert store.remove_filtered("p", 0, "alice") == rows[:2]
    assert store.remove_filtered("p", 1, "", "write") == [rows[3]]  # "" matches anything
    assert store.remove_filtered("p", 0, "carol") == []
    assert store.load() == [rows[2], rows[4]]
    assert store.version() == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", 0, "a"), "unknown policy type 'x'"),
        (("g", 2, "a"), "'g' rows take 2 values: cannot filter on values 3 to 3"),
        (("p", 1, "a", "b", "c"), "cannot filter on values 2 to 4"),
        (("p", -1, "a"), "cannot filter"),
        (("p", 0), "cannot filter"),
    ],
)
def test_remove_filtered_refuses_bad_filters(
    store: DatabaseStore, args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        store.remove_filtered(*args)


def test_replace_all(store: DatabaseStore) -> None:
    store.add(CROSS)
    assert store.replace_all([KEPT[0], KEPT[1], KEPT[0]]) == 2
    assert store.load() == KEPT
    assert store.version() == 2


def test_import_of_20000_rows_is_all_or_nothing(store: DatabaseStore, engine: sa.Engine) -> None:
    store.add([g("carol", "admin")])
    before = raw(engine)

    def rules(bad_at: int | None = None) -> Iterator[PolicyRow]:
        for n in range(1, 20_001):
            yield p(f"user{n}", "data,1" if n == bad_at else f"/data/{n % 50}", "read")

    with pytest.raises(PolicyError, match="^row 19999: value 2 contains a comma"):
        store.import_rows(rules(bad_at=19_999))
    assert raw(engine) == before and store.version() == 1

    done: list[int] = []
    assert store.import_rows(rules(), progress=done.append) == 20_000
    assert done == [5000, 10_000, 15_000, 20_000]
    assert len(store.load()) == 20_001 and store.version() == 2
    assert store.import_rows(rules()) == 0  # all stored already: no write, no new version
    assert store.version() == 2
    assert store.import_rows(rules(), replace=True, batch_size=7000) == 20_000
    assert store.load() == list(rules()) and store.version() == 3


def test_import_batch_size_must_be_positive(store: DatabaseStore) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        store.import_rows([], batch_size=0)


def test_version_moves_once_per_successful_write(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    store, other = open_store(), open_store()
    steps: list[tuple[Callable[[], object], int]] = [
        (lambda: store.add(CROSS), 1),
        (lambda: store.add(CROSS), 1),
        (lambda: store.remove(KEPT), 1),
        (lambda: store.remove(CROSS[:1]), 2),
        (lambda: store.update([CROSS[1]], [KEPT[0]]), 3),
        (lambda: store.remove_filtered("p", 0, "alice"), 4),
        (lambda: store.replace_all(CROSS), 5),
        (lambda: store.import_rows(KEPT), 6),
    ]
    for step, version in steps:
        step()
        assert (store.version(), other.version()) == (version, version)
    with pytest.raises(PolicyError):
        store.add([p("alice", "", "read")])
    with pytest.raises(PolicyError):
        store.update([g("nobody", "admin")], [g("alice", "admin")])
    assert store.version() == 6
    with engine.begin() as connection:  # the version row deleted by hand comes back
        connection.execute(sa.delete(version_table(sa.MetaData())))
    store.add([g("alice", "admin")])
    assert store.version() == 1


# -- compatibility with sqlalchemy-adapter, both ways -----------------------------------------

MODELS = {
    "rbac": (RBAC_MODEL.read_text(), ARITIES),
    "domains": (DOMAIN_MODEL, {"p": 4, "g": 3}),
}


def casbin_enforcer(model: str, engine: sa.Engine) -> Any:
    """A real pycasbin Enforcer on sqlalchemy-adapter, over the same database."""
    casbin_model = casbin.Model()
    casbin_model.load_model_from_text(model)
    return casbin.Enforcer(casbin_model, sqlalchemy_adapter.Adapter(engine))


@pytest.mark.parametrize("model", MODELS)
def test_reads_what_sqlalchemy_adapter_wrote(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine, model: str
) -> None:
    text, arities = MODELS[model]
    enforcer = casbin_enforcer(text, engine)
    extra = ["dom1"] if model == "domains" else []
    enforcer.add_policy("alice", *extra, "data1", "read")
    enforcer.add_policies([["bob", *extra, "data2", "write"], ["carol", *extra, "d3", "read"]])
    enforcer.add_grouping_policy("alice", "admin", *extra)
    enforcer.add_policy("admin", *extra, "data2", "write")
    enforcer.remove_policy("bob", *extra, "data2", "write")
    enforcer.update_policy(["carol", *extra, "d3", "read"], ["carol", *extra, "d3", "write"])
    enforcer.add_grouping_policy("bob", "admin", *extra)

    rows = open_store(arities=arities).load()
    assert [list(r.values) for r in rows if r.ptype == "p"] == enforcer.get_policy()
    assert [list(r.values) for r in rows if r.ptype == "g"] == enforcer.get_grouping_policy()
    assert len(rows) == 5


@pytest.mark.parametrize("model", MODELS)
def test_sqlalchemy_adapter_reads_what_we_wrote(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine, model: str
) -> None:
    text, arities = MODELS[model]
    store = open_store(arities=arities)
    extra = ("dom1",) if model == "domains" else ()
    other = ("dom2",) if model == "domains" else ()
    store.add(
        [
            p("alice", *extra, "data1", "read"),
            p("admin", *extra, "data2", "write"),
            p("bob", *other, "data1", "write"),
            g("alice", "admin", *extra),
            g("bob", "admin", *other),
            p("carol", *extra, "data2", "read"),
            p("dave", *extra, "data1", "read"),
        ]
    )
    store.remove([p("dave", *extra, "data1", "read")])
    store.update([p("carol", *extra, "data2", "read")], [p("carol", *extra, "data1", "read")])

    enforcer = casbin_enforcer(text, engine)
    ours = PolicyEngine(text, store.load())
    subjects, objects, actions = (
        ["alice", "bob", "carol", "dave", "admin"],
        ["data1", "data2"],
        [
            "read",
            "write",
        ],
    )
    domains = [("dom1",), ("dom2",)] if model == "domains" else [()]
    requests = [
        (sub, *dom, obj, act) for sub, dom, obj, act in product(subjects, domains, objects, actions)
    ]
    decisions = {request: enforcer.enforce(*request) for request in requests}
    assert decisions == {request: ours.enforce(*request) for request in requests}
    assert sum(decisions.values()) >= 4  # the grid holds allows as well as denials
    assert enforcer.get_policy() == [list(r.values) for r in store.load() if r.ptype == "p"]


# -- concurrency --------------------------------------------------------------------------


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Start ``count`` threads together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            target(n)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_concurrent_writers_lose_nothing(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    # Half the threads share one store (one pool), half another, as two processes would.
    stores = [open_store(), open_store()]

    def write(n: int) -> None:
        for k in range(50):
            stores[n % 2].add([p(f"user{n}", f"data{k}", "read")])

    run_threads(8, write)
    records = raw(engine)
    assert len(records) == len(set(values_of(records))) == 400
    assert stores[0].version() == 400


def test_concurrent_adds_of_the_same_rows_store_each_once(
    open_store: Callable[..., DatabaseStore], engine: sa.Engine
) -> None:
    stores = [open_store(), open_store()]
    rows = [g(f"user{k}", "admin") for k in range(50)]
    added: list[PolicyRow] = []

    def write(n: int) -> None:
        for row in rows[n:] + rows[:n]:
            added.extend(stores[n % 2].add([row]))

    run_threads(8, write)
    assert sorted(added, key=str) == sorted(rows, key=str)  # each row added by one thread
    assert len(raw(engine)) == 50 and stores[0].version() == 50


def test_several_processes_write_one_table(
    open_store: Callable[..., DatabaseStore], url: str, engine: sa.Engine
) -> None:
    open_store()  # create the schema once, before the processes race
    script = textwrap.dedent(
        """
        import sys
        from flask_casbin_guard.store.csv import PolicyRow
        from flask_casbin_guard.store.database import DatabaseStore
        store = DatabaseStore(sys.argv[1], {"p": 3, "g": 2})
        n = int(sys.argv[2])
        for k in range(25):
            store.add([PolicyRow("p", ("shared" if k < 10 else f"user{n}", f"data{k}", "read"))])
        store.close()
        """
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, url, str(n)]) for n in range(4)]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]
    records = values_of(raw(engine))
    assert len(records) == len(set(records)) == 10 + 4 * 15


_VALUE = st.text(
    alphabet=st.sampled_from(list("ab ,()[]\"'#=+-@")) | st.characters(exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(_VALUE, min_size=3, max_size=3), max_size=5))
def test_whatever_a_database_accepts_exports_to_a_file_that_imports_again(
    rows: list[list[str]],
) -> None:
    store = DatabaseStore("sqlite://", ARITIES)
    with tempfile.TemporaryDirectory() as folder:
        for values in rows:
            try:
                store.add([p(*values)])
            except PolicyError:
                continue  # refused before anything was stored
        exported = store.export()
        path = Path(folder, "out.csv")
        write_policy_file(path, exported, ARITIES)
        assert read_policy_file(path, ARITIES) == exported
    store.close()
