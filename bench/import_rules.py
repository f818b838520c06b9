"""Bulk policy import: DatabaseStore.import_rows against sqlalchemy-adapter, same run.

    python bench/import_rules.py [--rules 100000] [--adapter-rules 2000] [--quick]

Both run on a SQLite file and on PostgreSQL (skipped, with the reason, when the server at
GUARD_BENCH_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test, is unreachable).
sqlalchemy-adapter's ``Adapter.add_policies`` commits once per rule, so it is timed on
``--adapter-rules`` rules only; its time for ``--rules`` is that per-rule cost multiplied out,
and is marked "extrapolated". Each method gets a fresh database. Everything created (a
temporary directory, temporary PostgreSQL databases) is removed, even on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import sqlalchemy as sa
import sqlalchemy_adapter
from psycopg import sql
from sqlalchemy.engine import make_url

from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.database import DatabaseStore

ADMIN_URL = os.environ.get("GUARD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ARITIES = {"p": 3, "g": 2}
TARGET_SECONDS = 5.0

#: (database, method, rules, seconds, extrapolated)
Result = tuple[str, str, int, float, bool]


def policy(count: int) -> list[PolicyRow]:
    """``count`` distinct rules, one ``g`` row in ten, like an RBAC policy."""
    rows = []
    for n in range(count):
        if n % 10 == 9:
            rows.append(PolicyRow("g", (f"user{n}", f"role{n % 97}")))
        else:
            rows.append(PolicyRow("p", (f"role{n % 97}", f"/data/{n % 1000}/{n}", "read")))
    return rows


@contextlib.contextmanager
def sqlite_databases() -> Iterator[Callable[[], str]]:
    """Fresh SQLite file URLs in a temporary directory removed at the end."""
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as directory:
        names = (f"sqlite:///{Path(directory, f'policy{n}.db')}" for n in range(1_000_000))
        yield lambda: next(names)


@contextlib.contextmanager
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL databases, all dropped at the end."""
    created: list[str] = []

    def new() -> str:
        name = f"guard_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    try:
        yield new
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in created:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                admin.execute(drop.format(sql.Identifier(name)))


def time_ours(url: str, rows: list[PolicyRow]) -> float:
    store = DatabaseStore(url, ARITIES)
    try:
        start = time.perf_counter()
        added = store.import_rows(rows)
        elapsed = time.perf_counter() - start
        assert added == len(rows) == len(store.load()), "import lost rows"
        return elapsed
    finally:
        store.close()


def time_adapter(url: str, rows: list[PolicyRow]) -> float:
    engine = sa.create_engine(url)
    try:
        adapter = sqlalchemy_adapter.Adapter(engine)
        start = time.perf_counter()
        for ptype in ("p", "g"):
            adapter.add_policies(ptype, ptype, [list(r.values) for r in rows if r.ptype == ptype])
        elapsed = time.perf_counter() - start
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT count(*) FROM casbin_rule").scalar()
        assert stored == len(rows), "sqlalchemy-adapter lost rows"
        return elapsed
    finally:
        engine.dispose()


def measure(
    database: str, fresh: Callable[[], str], rules: int, adapter_rules: int
) -> list[Result]:
    rows = policy(rules)
    ours = time_ours(fresh(), rows)
    ours_small = time_ours(fresh(), rows[:adapter_rules])
    adapter = time_adapter(fresh(), rows[:adapter_rules])
    return [
        (database, "DatabaseStore.import_rows", rules, ours, False),
        (database, "DatabaseStore.import_rows", adapter_rules, ours_small, False),
        (database, "sqlalchemy-adapter add_policies", adapter_rules, adapter, False),
        (database, "sqlalchemy-adapter add_policies", rules, adapter / adapter_rules * rules, True),
    ]


def report(results: list[Result], rules: int, adapter_rules: int) -> None:
    print(f"\n{'database':<13}{'method':<34}{'rules':>9}{'seconds':>10}{'rules/s':>11}  note")
    for database, method, count, seconds, extrapolated in results:
        note = f"extrapolated from {adapter_rules:,} rules" if extrapolated else "measured"
        print(
            f"{database:<13}{method:<34}{count:>9,}{seconds:>10.2f}"
            f"{count / seconds:>11,.0f}  {note}"
        )
    print()
    for database in dict.fromkeys(result[0] for result in results):
        ours, ours_small, adapter, projected = [r[3] for r in results if r[0] == database]
        verdict = "met" if ours <= TARGET_SECONDS else "NOT met"
        print(
            f"{database}: {rules:,} rules in {ours:.2f} s (target <= {TARGET_SECONDS:.0f} s: "
            f"{verdict}); sqlalchemy-adapter is {adapter / ours_small:.0f}x slower on "
            f"{adapter_rules:,} rules (measured), {projected / ours:.0f}x on {rules:,} "
            "(extrapolated)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--adapter-rules", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="10,000 rules, adapter on 300")
    args = parser.parse_args()
    rules, adapter_rules = (10_000, 300) if args.quick else (args.rules, args.adapter_rules)
    adapter_rules = min(adapter_rules, rules)
    print(f"importing {rules:,} rules; sqlalchemy-adapter timed on {adapter_rules:,}")
    results: list[Result] = []
    with sqlite_databases() as fresh:
        results += measure("SQLite file", fresh, rules, adapter_rules)
    try:
        with postgres_databases() as fresh:
            results += measure("PostgreSQL", fresh, rules, adapter_rules)
    except psycopg.OperationalError as error:
        shown = make_url(ADMIN_URL).render_as_string(hide_password=True)
        print(f"PostgreSQL skipped: {shown} is not reachable ({error})")
    report(results, rules, adapter_rules)


if __name__ == "__main__":
    main()
