"""Policy rows in a SQL database (SQLite or PostgreSQL), in sqlalchemy-adapter's schema.

Every write is one transaction that first takes the writers' lock: ``BEGIN IMMEDIATE`` on
SQLite, then an UPDATE of the table's version row, whose row lock does it on PostgreSQL. Writers
from any thread or process therefore run one after the other, and whatever a write reads after
the lock (the version, the rows) includes every earlier commit: :meth:`DatabaseStore.write` lets
the caller decide the write from that state. A write that turns out to change nothing is rolled
back, so the version moves only when the rows do. Rows are validated before anything is sent to
the database.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, MetaData, delete, insert, update
from sqlalchemy.exc import SQLAlchemyError

from ..errors import PolicyError
from .base import Change, Planner
from .csv import PolicyRow, format_line
from .schema import (
    VALUE_COLUMNS,
    apply_change,
    as_record,
    bump_version,
    check_arities,
    check_engine,
    checked_rows,
    create_schema,
    delete_ids,
    delete_subject,
    describe_error,
    find_rows,
    is_memory_sqlite,
    mask_url,
    open_engine,
    padded,
    parse_record,
    read_version,
    rule_table,
    select_rows,
    stored_row,
    stored_rows,
    version_table,
)

T = TypeVar("T")


class DatabaseStore:
    """Policy rows in a ``casbin_rule`` table, shared by threads and processes.

    :param database: a SQLAlchemy URL (``sqlite:///policy.db``, ``postgresql+psycopg://…``) or
        an :class:`~sqlalchemy.Engine`. An engine passed in is used as configured and is not
        disposed by :meth:`close`.
    :param arities: number of values each ptype takes (``{"p": 3, "g": 2}``); every row written
        is checked against it.
    :param table_name: the rule table; sqlalchemy-adapter's ``table_name``.
    :param create: create the rule table, its index and the version table when missing.
    :raises ConfigurationError: bad URL, missing driver, unusable engine or model.
    :raises PolicyError: the database cannot be reached or the schema created.
    """

    def __init__(
        self,
        database: str | Engine,
        arities: Mapping[str, int],
        *,
        table_name: str = "casbin_rule",
        create: bool = True,
    ) -> None:
        check_arities(arities)
        self.arities: dict[str, int] = dict(arities)
        #: rows validated by the last load, by (ptype, v0..v5)
        self._known: dict[tuple[Any, ...], PolicyRow] = {}
        if isinstance(database, str):
            self.engine, memory = open_engine(database)
            self._owns_engine = True
        else:
            check_engine(database)
            self.engine, memory = database, is_memory_sqlite(database.url)
            self._owns_engine = False
        #: the database URL with its password masked, safe for logs and messages
        self.url = mask_url(self.engine.url)
        # In-memory SQLite is one connection shared by all threads: two transactions on it
        # would interleave, so operations take turns. Elsewhere each one has its connection.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if memory else contextlib.nullcontext()
        )
        metadata = MetaData()
        self._rules = rule_table(metadata, table_name)
        self._versions = version_table(metadata)
        if create:
            try:
                with self._lock:
                    create_schema(self.engine, self._rules, self._versions)
            except SQLAlchemyError as error:
                self.close()  # nobody else can: the caller gets no store
                message = self._failed("create the schema", error)
                raise PolicyError(message, original_error=error) from None
            except BaseException:
                self.close()
                raise

    def __repr__(self) -> str:
        return f"<DatabaseStore {self.url} table={self._rules.name!r}>"

    def close(self) -> None:
        """Close the pooled connections of an engine this store created."""
        if self._owns_engine:
            self.engine.dispose()

    # -- reading ------------------------------------------------------------------------------

    def version(self) -> int:
        """The table's version: it grows by one with every write that changed rows."""
        with self._reading("read the version") as connection:
            return read_version(connection, self._versions, self._rules.name)

    def load(self, arities: Mapping[str, int] | None = None) -> list[PolicyRow]:
        """Every row, in id order, validated against ``arities`` (default: the store's).

        :raises PolicyError: naming the table and id of the first invalid row.
        """
        return self.load_versioned(arities)[1]

    def load_versioned(
        self, arities: Mapping[str, int] | None = None
    ) -> tuple[int, list[PolicyRow]]:
        """The version and every row. The rows are read after the version, so they are at
        least that recent: a process that remembers the version never misses a write."""
        wanted = self.arities if arities is None else arities
        check_arities(wanted)
        with self._reading("load the policy") as connection:
            version = read_version(connection, self._versions, self._rules.name)
            return version, self._rows(connection, wanted)

    def _rows(self, connection: Connection, wanted: Mapping[str, int]) -> list[PolicyRow]:
        records = connection.execute(select_rows(self._rules).order_by(self._rules.c.id)).all()
        if dict(wanted) != self.arities:
            return [parse_record(record, wanted, self._rules.name) for record in records]
        # Records validated by the last load are not checked again: a reload after one change
        # re-checks one row, not 100,000.
        previous, known = self._known, {}
        rows = []
        for record in records:
            key = tuple(record[1:])
            row = previous.get(key)
            if row is None:
                row = parse_record(record, wanted, self._rules.name)
            known[key] = row
            rows.append(row)
        self._known = known
        return rows

    def diagnose(self, arities: Mapping[str, int]) -> tuple[list[PolicyRow], list[str]]:
        """The valid rows and a problem for each invalid record, naming table and id."""
        with self._reading("read the policy") as connection:
            records = connection.execute(select_rows(self._rules).order_by(self._rules.c.id)).all()
        rows, problems = [], []
        for record in records:
            try:
                rows.append(parse_record(record, arities, self._rules.name))
            except PolicyError as error:
                problems.append(str(error))
        return rows, problems

    def export(self) -> list[PolicyRow]:
        """Every row as stored, in id order, without needing the model (``flask guard export``).

        Rows are checked against the storage rules only (no NULL between values, the value
        rules of the CSV format), so a policy can be exported even after its model changed.
        """
        with self._reading("export the policy") as connection:
            records = connection.execute(select_rows(self._rules).order_by(self._rules.c.id)).all()
        return [parse_record(record, None, self._rules.name) for record in records]

    # -- writing ------------------------------------------------------------------------------

    def write(
        self, plan: Planner, progress: Callable[[int], object] | None = None
    ) -> tuple[int, int]:
        """Decide a write from the stored state with the writers' lock held, then make it.

        ``plan(version, load)`` runs inside the write transaction, after the lock: ``version``
        is the version of the rows every earlier write left, ``load()`` reads them (validated,
        id order). Whatever ``plan`` raises rolls the transaction back.

        :param progress: called as added rows are sent, with the number sent so far.
        :return: the version the plan saw and the version committed (equal: nothing changed).
        """

        def checked(change: Change) -> Change:
            removed = frozenset(checked_rows(self.arities, change.removed, "row"))
            added = tuple(checked_rows(self.arities, change.added, "row"))
            return Change(added, removed, change.replace)

        def work(connection: Connection, after: int) -> tuple[tuple[int, int], bool]:
            before = after - 1
            change = plan(before, lambda: self._rows(connection, self.arities))
            if not change:
                return (before, before), False
            apply_change(connection, self._rules, checked(change), progress)
            return (before, after), True

        return self._write("write the policy", work)

    def add(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]:
        """Store the rows not stored yet; return them (duplicates in ``rows`` count once)."""
        batch = checked_rows(self.arities, rows, "row")
        if not batch:
            return []

        def work(connection: Connection, _version: int) -> tuple[list[PolicyRow], bool]:
            stored = set(find_rows(connection, self._rules, batch))
            added = self._insert_new(connection, batch, stored)
            return added, bool(added)

        return self._write("add rows", work)

    def remove(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]:
        """Delete every stored copy of exactly these rows; return those that were stored.

        A row matches on its ptype and each value, and on NULL in the columns it does not use:
        ``remove([p(alice,data1,read), p(bob,data2,write)])`` never touches
        ``p(alice,data2,write)`` (sqlalchemy-adapter's ``remove_policies`` deletes it).
        """
        batch = list(dict.fromkeys(checked_rows(self.arities, rows, "row")))
        if not batch:
            return []

        def work(connection: Connection, _version: int) -> tuple[list[PolicyRow], bool]:
            stored = find_rows(connection, self._rules, batch)
            delete_ids(connection, self._rules, [i for ids in stored.values() for i in ids])
            return [row for row in batch if row in stored], bool(stored)

        return self._write("remove rows", work)

    def update(self, old_rows: Iterable[PolicyRow], new_rows: Iterable[PolicyRow]) -> None:
        """Replace each old row by the new row at the same position, pair by pair.

        The first stored copy of the old row is rewritten in place (its id, so its place in
        rule order, is kept); other copies are deleted. When the new row is already stored,
        the old one is only deleted, so no duplicate appears.

        :raises PolicyError: the lists differ in length or an old row is not stored; then
            nothing is changed.
        """
        olds, news = (
            checked_rows(self.arities, old_rows, "old row"),
            checked_rows(self.arities, new_rows, "new row"),
        )
        if len(olds) != len(news):
            raise PolicyError(f"update needs as many new rows as old ones ({len(olds)})")

        def work(connection: Connection, _version: int) -> tuple[None, bool]:
            changed = False
            for number, (old, new) in enumerate(zip(olds, news, strict=True), start=1):
                if old == new:
                    continue
                found = find_rows(connection, self._rules, [old, new])
                if old not in found:
                    raise PolicyError(f"old row {number} is not stored: {format_line(old)}")
                first, *others = found[old]
                if new in found:
                    others.append(first)
                else:
                    values = dict(zip(VALUE_COLUMNS, padded(new.values), strict=True))
                    query = update(self._rules).where(self._rules.c.id == first)
                    connection.execute(query.values(ptype=new.ptype, **values))
                delete_ids(connection, self._rules, others)
                changed = True
            return None, changed

        return self._write("update rows", work)

    def remove_filtered(self, ptype: str, field_index: int, *values: str) -> list[PolicyRow]:
        """Delete the ``ptype`` rows whose values from ``field_index`` on equal ``values``.

        An empty string matches anything, as in Casbin's ``remove_filtered_policy``. Returns
        the deleted rows as they were stored.
        """
        arity = self.arities.get(ptype)
        if arity is None:
            known = sorted(self.arities)
            raise PolicyError(f"unknown policy type {ptype!r} (the model defines {known})")
        if not values or field_index < 0 or field_index + len(values) > arity:
            raise PolicyError(
                f"{ptype!r} rows take {arity} values: cannot filter on values "
                f"{field_index + 1} to {field_index + len(values)}"
            )
        columns = self._rules.c
        conditions = [columns.ptype == ptype] + [
            columns[VALUE_COLUMNS[field_index + offset]] == value
            for offset, value in enumerate(values)
            if value != ""
        ]

        def work(connection: Connection, _version: int) -> tuple[list[PolicyRow], bool]:
            records = connection.execute(select_rows(self._rules).where(*conditions)).all()
            delete_ids(connection, self._rules, [record.id for record in records])
            return [stored_row(record) for record in records], bool(records)

        return self._write("remove rows", work)

    def remove_subject(self, login: str, also: Callable[[Connection], T]) -> T:
        """Delete the rows whose first value is ``login`` and run ``also``: one transaction."""

        def work(connection: Connection, _version: int) -> tuple[T, bool]:
            delete_subject(connection, self._rules, login)
            return also(connection), True  # committed even when no rule went: ``also`` wrote

        return self._write("remove a subject", work)

    def replace_all(self, rows: Iterable[PolicyRow]) -> int:
        """Make ``rows`` the whole policy (``import --replace``); return how many are stored."""
        # Checked whole first, so that a bad row is reported before the table is emptied.
        return self.import_rows(checked_rows(self.arities, rows, "row"), replace=True)

    def import_rows(
        self,
        rows: Iterable[PolicyRow],
        batch_size: int = 5000,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """Add many rows in one transaction, reading and writing ``batch_size`` at a time.

        All or nothing: an invalid row (named by its position, from 1) or a database error at
        any point rolls back every batch. Duplicates are skipped as by :meth:`add`.

        :param replace: delete every stored row first.
        :param progress: called after each batch with the number of rows read so far.
        :return: the number of rows added.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        iterator = iter(rows)

        def work(connection: Connection, _version: int) -> tuple[int, bool]:
            deleted = connection.execute(delete(self._rules)).rowcount if replace else 0
            # One scan of the stored rows up front instead of a lookup per batch, each of which
            # may scan the table: 0.7 s instead of 18 s for 100k rows on PostgreSQL.
            seen = set() if replace else stored_rows(connection, self._rules)
            added = read = 0
            while batch := list(islice(iterator, batch_size)):
                checked = checked_rows(self.arities, batch, "row", start=read + 1)
                read += len(batch)
                added += len(self._insert_new(connection, checked, seen))
                if progress is not None:
                    progress(read)
            return added, bool(added or deleted)

        return self._write("import rows", work)

    # -- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        try:
            with self._lock, self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as error:
            raise PolicyError(self._failed(action, error), original_error=error) from None

    def _write(self, action: str, work: Callable[[Connection, int], tuple[T, bool]]) -> T:
        """Run ``work`` in one transaction that bumps the version first; roll back a no-op."""
        try:
            with self._lock, self.engine.connect() as connection:
                with connection.begin() as transaction:
                    if connection.dialect.name == "sqlite":
                        # The write lock now, not at the first write: pysqlite's own BEGIN is
                        # DEFERRED. (It sends none once a transaction is open.)
                        connection.exec_driver_sql("BEGIN IMMEDIATE")
                    result, changed = work(
                        connection, bump_version(connection, self._versions, self._rules.name)
                    )
                    if not changed:
                        transaction.rollback()
                return result
        except SQLAlchemyError as error:
            raise PolicyError(self._failed(action, error), original_error=error) from None

    def _failed(self, action: str, error: BaseException) -> str:
        return f"cannot {action} in {self.url}: {describe_error(error, self.engine.url)}"

    def _insert_new(
        self, connection: Connection, rows: Sequence[PolicyRow], seen: set[PolicyRow]
    ) -> list[PolicyRow]:
        """Insert the rows not in ``seen``, once each, and add them to it; return them."""
        fresh = [row for row in dict.fromkeys(rows) if row not in seen]
        seen.update(fresh)
        if fresh:
            # One executemany: the drivers send it as batches, not a round trip per row.
            connection.execute(insert(self._rules), [as_record(row) for row in fresh])
        return fresh
