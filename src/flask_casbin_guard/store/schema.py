"""The SQL side of the database store: tables, engines, schema, row lookups, safe error text.

The rule table is sqlalchemy-adapter's ``casbin_rule`` (``id``, ``ptype``, ``v0``..``v5``, all
``VARCHAR(255)``, NULL for unused values), so databases it wrote keep working both ways.
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    column,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    update,
    values,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, ProgrammingError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from ..errors import ConfigurationError, PolicyError
from .base import Change
from .csv import MAX_VALUE_LENGTH, PolicyRow, check_row

#: values per rule the ``casbin_rule`` schema can hold
MAX_VALUES = 6
#: the value columns, in order
VALUE_COLUMNS = tuple(f"v{index}" for index in range(MAX_VALUES))
#: the table holding one version counter per rule table, bumped by every write
VERSION_TABLE = "casbin_guard_version"
#: rows looked up or deleted per statement: far below SQLite's and PostgreSQL's limits on bound
#: parameters (32,766 and 65,535)
LOOKUP_CHUNK = 1000
#: seconds a SQLite writer waits for another one before giving up ("database is locked")
SQLITE_BUSY_TIMEOUT = 30.0

# user:password@ in URLs that make_url could not parse (they are never shown as given)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def rule_table(metadata: MetaData, name: str) -> Table:
    """sqlalchemy-adapter's rule table, column for column, plus an index for lookups."""
    table = Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("ptype", String(MAX_VALUE_LENGTH)),
        *(Column(column, String(MAX_VALUE_LENGTH)) for column in VALUE_COLUMNS),
    )
    # Writes look rows up by their values (duplicates, exact removal): without an index every
    # lookup would scan the table.
    Index(f"ix_{name}_ptype_v0_v1", table.c.ptype, table.c.v0, table.c.v1)
    return table


def version_table(metadata: MetaData) -> Table:
    """One row per rule table: its name and a counter bumped in every write transaction."""
    return Table(
        VERSION_TABLE,
        metadata,
        Column("name", String(MAX_VALUE_LENGTH), primary_key=True),
        Column("version", BigInteger, nullable=False),
    )


#: engines open_engine made: a forked child must not use their pooled connections
_OWN_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _drop_inherited_connections() -> None:
    # A pooled connection copied by fork is one socket shared by two processes, whose queries
    # then interleave on it (gunicorn --preload forks workers from a master that loaded the
    # policy). close=False: the parent keeps using them; the child opens its own.
    for engine in list(_OWN_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_drop_inherited_connections)


def open_engine(url: str) -> tuple[Engine, bool]:
    """An engine for ``url`` and whether it is an in-memory SQLite database.

    ``postgresql://`` without a driver means psycopg 3 (the ``postgres`` extra), not psycopg2.

    :raises ConfigurationError: the URL cannot be parsed or its driver is not installed.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigurationError(f"invalid database URL {mask_text(url)!r}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {}
    memory = is_memory_sqlite(parsed)
    if memory:
        # One connection shared by every thread: each new connection to ":memory:" would be a
        # new, empty database. The store serialises its operations on it.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif parsed.get_backend_name() == "sqlite":
        options = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    else:
        # A pooled connection may have been closed by a server restart since its last use.
        options = {"pool_pre_ping": True}
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, NoSuchModuleError, ImportError) as error:
        raise ConfigurationError(f"cannot use database URL {mask_url(parsed)!r}: {error}") from None
    if parsed.get_backend_name() == "sqlite" and not memory:
        event.listen(engine, "connect", _sqlite_wal)
    if not memory:  # in-memory SQLite is this process's own copy: nothing is shared
        _OWN_ENGINES.add(engine)
    return engine, memory


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (every app process loading the policy) run while a writer commits.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def is_memory_sqlite(url: URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database (one per connection)."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or (url.query.get("mode") == "memory")
    )


def check_engine(engine: Engine) -> None:
    """Refuse an in-memory SQLite engine whose connections would each see another database."""
    if is_memory_sqlite(engine.url) and not isinstance(engine.pool, StaticPool):
        raise ConfigurationError(
            "an in-memory SQLite engine must use StaticPool (and check_same_thread=False): "
            "each pooled connection would otherwise be a separate, empty database; "
            "pass the URL string and the store configures it"
        )


def create_schema(engine: Engine, rules: Table, versions: Table) -> None:
    """Create what is missing (rule table, its index, version table and row), keep the rest."""
    # Two processes starting together may both see a table missing; the loser's CREATE fails
    # (on PostgreSQL even with IF NOT EXISTS), and a second pass then finds everything there.
    for attempt in (1, 2):
        try:
            with engine.begin() as connection:
                connection.execute(CreateTable(rules, if_not_exists=True))
                _check_columns(connection, rules)
                for index in rules.indexes:
                    connection.execute(CreateIndex(index, if_not_exists=True))
                connection.execute(CreateTable(versions, if_not_exists=True))
            with engine.begin() as connection:
                query = select(versions.c.version).where(versions.c.name == rules.name)
                if connection.execute(query).first() is None:
                    connection.execute(insert(versions).values(name=rules.name, version=0))
            return
        except (IntegrityError, ProgrammingError):
            if attempt == 2:
                raise


def _check_columns(connection: Any, rules: Table) -> None:
    found = {column["name"] for column in inspect(connection).get_columns(rules.name)}
    missing = [column.name for column in rules.columns if column.name not in found]
    if missing:
        raise ConfigurationError(
            f"table {rules.name!r} is not a casbin_rule table: no column {', '.join(missing)}"
        )


def mask_url(url: URL) -> str:
    """The URL as text, its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def mask_text(text: str) -> str:
    """``text`` with anything shaped like ``://user:password@`` masked."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def describe_error(error: BaseException, url: URL) -> str:
    """One line about a database error: the driver's message, never the SQL, rows or password."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    text = f"{type(original).__name__}: {lines[0] if lines else ''}"
    if len(text) > 300:
        text = text[:297] + "..."
    if url.password:
        text = text.replace(str(url.password), "***")
    return mask_text(text)


def check_arities(arities: Mapping[str, int]) -> None:
    """Refuse a model whose rows the ``casbin_rule`` columns cannot hold."""
    for ptype, arity in arities.items():
        if not 1 <= arity <= MAX_VALUES:
            raise ConfigurationError(
                f"policy type {ptype!r} takes {arity} values; the casbin_rule table holds "
                f"1 to {MAX_VALUES}"
            )


def select_rows(rules: Table) -> Select[Any]:
    """``SELECT id, ptype, v0..v5``: the shape :func:`stored_row` reads."""
    columns = rules.c
    return select(columns.id, columns.ptype, *(columns[name] for name in VALUE_COLUMNS))


def stored_row(record: Any) -> PolicyRow:
    """A selected record as a row, unchecked: its non-NULL values."""
    return PolicyRow(record.ptype, tuple(value for value in record[2:] if value is not None))


def stored_rows(connection: Connection, rules: Table) -> set[PolicyRow]:
    """Every stored row that a valid row could equal (no NULL between values)."""
    found: set[PolicyRow] = set()
    for record in connection.execute(select_rows(rules)):
        row = stored_row(record)
        if tuple(record[2:]) == padded(row.values):  # a NULL between values matches no row
            found.add(row)
    return found


def as_record(row: PolicyRow) -> dict[str, str | None]:
    """Column values for ``row``; the columns it does not use are NULL, as sqlalchemy-adapter
    writes them."""
    return {"ptype": row.ptype, **dict(zip(VALUE_COLUMNS, padded(row.values), strict=True))}


def padded(values: tuple[str, ...]) -> tuple[str | None, ...]:
    """``values`` followed by NULLs up to :data:`MAX_VALUES`."""
    return values + (None,) * (MAX_VALUES - len(values))


def find_rows(
    connection: Connection, rules: Table, rows: Iterable[PolicyRow]
) -> dict[PolicyRow, list[int]]:
    """Ids of the stored copies of each row, lowest first.

    Exact: the columns a row does not use must be NULL (so ``g, a, b`` never matches
    ``g, a, b, dom``), and values are compared again in Python in case the database's
    collation calls unequal strings equal.
    """
    wanted = set(rows)
    groups: dict[tuple[str, int], list[PolicyRow]] = {}
    for row in wanted:
        groups.setdefault((row.ptype, len(row.values)), []).append(row)
    found: dict[PolicyRow, list[int]] = {}
    columns = rules.c
    for (ptype, size), group in groups.items():
        names = VALUE_COLUMNS[:size]
        unused = [columns[name].is_(None) for name in VALUE_COLUMNS[size:]]
        for start in range(0, len(group), LOOKUP_CHUNK):
            # A join with the wanted rows as a VALUES list, not "(v0, v1, v2) IN (...)":
            # PostgreSQL runs the IN as one OR per wanted row on every stored row (1.6 s for
            # 1,000 rows against 100k), the join as one hash join (0.15 s).
            chunk = [row.values for row in group[start : start + LOOKUP_CHUNK]]
            wanted_values = values(*(column(name, String) for name in names), name="wanted").data(
                chunk
            )
            keys = wanted_values.cte("wanted")
            match = and_(*(columns[name] == keys.c[name] for name in names))
            query = select_rows(rules).join(keys, match).where(columns.ptype == ptype, *unused)
            for record in connection.execute(query.order_by(columns.id)):
                row = PolicyRow(record.ptype, tuple(record[2 : 2 + size]))
                if row in wanted:
                    found.setdefault(row, []).append(record.id)
    return found


def delete_ids(connection: Connection, rules: Table, ids: Sequence[int]) -> None:
    """Delete rows by id, a bounded number per statement."""
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        connection.execute(delete(rules).where(rules.c.id.in_(chunk)))


def delete_subject(connection: Connection, rules: Table, login: str) -> list[PolicyRow]:
    """Delete the rows whose first value is ``login`` (a user's roles and permissions)."""
    records = connection.execute(select_rows(rules).where(rules.c.v0 == login)).all()
    delete_ids(connection, rules, [record.id for record in records])
    return [stored_row(record) for record in records]


def parse_record(record: Any, arities: Mapping[str, int] | None, table: str) -> PolicyRow:
    """A selected record as a validated row (``arities=None``: the storage rules only).

    :raises PolicyError: naming the table and the record's id.
    """
    values = record[2:]
    used = [value for value in values if value is not None]
    try:
        if values[len(used) :].count(None) != MAX_VALUES - len(used):
            raise ValueError("a NULL value comes before a non-NULL one")
        if record.ptype is None:
            raise ValueError("ptype is NULL")
        if not used:
            raise ValueError("no values")
        known = {record.ptype: len(used)} if arities is None else arities
        return check_row(record.ptype, used, known)
    except ValueError as error:
        raise PolicyError(f"{table} id {record.id}: {error}") from None


def checked_rows(
    arities: Mapping[str, int], rows: Iterable[PolicyRow], name: str, start: int = 1
) -> list[PolicyRow]:
    """Validate every row before anything is written; errors name the row's position."""
    checked: list[PolicyRow] = []
    for number, row in enumerate(rows, start=start):
        try:
            if not isinstance(row, PolicyRow):
                raise ValueError(f"expected a PolicyRow, got {type(row).__name__}")
            checked.append(check_row(row.ptype, row.values, arities))
        except ValueError as error:
            raise PolicyError(f"{name} {number}: {error}") from None
    return checked


def read_version(connection: Connection, versions: Table, name: str) -> int:
    """The version of rule table ``name`` (0 when its row is missing)."""
    query = select(versions.c.version).where(versions.c.name == name)
    return int(connection.execute(query).scalar() or 0)


def bump_version(connection: Connection, versions: Table, name: str) -> int:
    """Add one to the version of ``name``, which takes the writers' lock; return the new one."""
    query = update(versions).where(versions.c.name == name)
    query = query.values(version=versions.c.version + 1).returning(versions.c.version)
    bumped = connection.execute(query).scalar()
    if bumped is None:
        # The row was deleted by hand (or create=False on a new table): start it again.
        connection.execute(insert(versions).values(name=name, version=1))
        return 1
    return int(bumped)


def apply_change(
    connection: Connection,
    rules: Table,
    change: Change,
    progress: Callable[[int], object] | None = None,
) -> None:
    """Make a checked change: delete every row (``replace``) or every copy of the removed
    rows, then insert the added rows in batches, calling ``progress`` after each."""
    if change.replace:
        connection.execute(delete(rules))
    elif change.removed:
        found = find_rows(connection, rules, change.removed)
        delete_ids(connection, rules, [i for ids in found.values() for i in ids])
    added = change.added
    for start in range(0, len(added), LOOKUP_CHUNK * 5):
        batch = added[start : start + LOOKUP_CHUNK * 5]
        connection.execute(insert(rules), [as_record(row) for row in batch])
        if progress is not None:
            progress(start + len(batch))
