"""Delay from a policy commit to ``on_change`` in another process, per watcher.

    python bench/propagation.py [--changes 50] [--slow-changes 10]

Each change is a real ``DatabaseStore.add`` (a PostgreSQL database created and dropped by this
script, or a temporary SQLite file when PostgreSQL is absent) followed by ``watcher.notify``.
A listener in a separate process (``spawn``) timestamps each ``on_change``; the delay runs from
the commit's return to that timestamp, so it includes reading the version and notifying.
Changes are spaced at random so that they fall at every phase of a poll. The default poll
(5 s) gets ``--slow-changes`` changes only, to keep the run short. Reported: median and max.

Needs PostgreSQL (GUARD_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test) and
Redis (GUARD_TEST_REDIS, default redis://127.0.0.1:6379/0); a method whose server is absent is
skipped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.database import DatabaseStore
from flask_casbin_guard.sync import DEFAULT_INTERVAL, make_watcher

POSTGRES_ADMIN = os.environ.get("GUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("GUARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
ARITIES = {"p": 3, "g": 2}


def listen(spec: str, store_url: str, events: Connection, stop: Event) -> None:
    """The other process: report every on_change with its wall-clock time."""
    store = DatabaseStore(store_url, ARITIES, create=False)
    watcher = make_watcher(spec, version=store.version)
    watcher.start(lambda version: events.send(("change", version, time.time())))
    deadline = time.monotonic() + 20
    while not watcher.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    events.send(("ready", watcher.healthy, time.time()))
    stop.wait()
    watcher.stop()
    store.close()


def measure(spec: str, store: DatabaseStore, store_url: str, changes: int) -> tuple[float, ...]:
    """Delays in seconds from commit to on_change in the listener, one per change."""
    ctx = multiprocessing.get_context("spawn")
    receiving, sending = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    child = ctx.Process(target=listen, args=(spec, store_url, sending, stop), daemon=True)
    child.start()
    writer = make_watcher(spec, version=store.version)
    interval = writer.interval  # type: ignore[attr-defined]
    pushes = not spec.startswith("poll")
    delays: list[float] = []
    try:
        kind, healthy, _ = receiving.recv()
        while kind != "ready":  # the first version read reports before the listener is ready
            kind, healthy, _ = receiving.recv()
        if not healthy:
            raise SystemExit(f"{spec}: the listener did not become healthy")
        tag = uuid.uuid4().hex[:8]
        for number in range(changes):
            time.sleep(random.uniform(0, 0.05 if pushes else interval))
            store.add([PolicyRow("p", (f"user{number}-{tag}", "data", "read"))])
            committed = time.time()
            version = store.version()
            writer.notify(version)
            delays.append(_seen(receiving, version, timeout=interval + 5) - committed)
    finally:
        stop.set()
        child.join(10)
        writer.stop()
    return tuple(delays)


def _seen(events: Connection, version: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while events.poll(max(deadline - time.monotonic(), 0)):
        kind, seen, at = events.recv()
        if kind == "change" and seen is not None and seen >= version:
            return float(at)
    raise SystemExit(f"version {version} not seen within {timeout:g} s")


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A new database's SQLAlchemy URL (dropped afterwards), or None without PostgreSQL."""
    try:
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url
    except ImportError:
        yield None
        return
    name = f"guard_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        print(f"PostgreSQL skipped: {type(error).__name__}")
        yield None
        return
    try:
        url = make_url(POSTGRES_ADMIN).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(query.format(sql.Identifier(name)))


def redis_available() -> bool:
    try:
        import redis
    except ImportError:
        return False
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError as error:
        print(f"Redis skipped: {type(error).__name__}")
        return False
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50, help="changes per method")
    parser.add_argument("--slow-changes", type=int, default=10, help="changes for the 5 s poll")
    args = parser.parse_args()
    with ExitStack() as stack:
        pg_url = stack.enter_context(postgres_database())
        if pg_url is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            store_url = f"sqlite:///{Path(folder) / 'policy.db'}"
        else:
            store_url = pg_url
        store = DatabaseStore(store_url, ARITIES)
        stack.callback(store.close)
        methods: list[tuple[str, str, int]] = []
        if pg_url is not None:
            methods.append(("postgresql", pg_url, args.changes))
        if redis_available():
            channel = f"guard_bench_{uuid.uuid4().hex[:12]}"
            methods.append(("redis", f"{REDIS}?channel={channel}", args.changes))
        methods.append(("poll:500ms", "poll:500ms", args.changes))
        methods.append((f"poll:{DEFAULT_INTERVAL:g}s (default)", "poll", args.slow_changes))
        backend = "PostgreSQL" if pg_url else "SQLite"
        print(f"store: {backend}; listener in another process; delay from commit to on_change")
        print(f"{'method':<22}{'changes':>8}{'median ms':>11}{'max ms':>10}")
        for label, spec, changes in methods:
            delays = measure(spec, store, store_url, changes)
            median, worst = statistics.median(delays) * 1000, max(delays) * 1000
            flag = "" if spec.startswith("poll") or worst <= 1000 else "  (target: max <= 1000)"
            print(f"{label:<22}{len(delays):>8}{median:>11.1f}{worst:>10.1f}{flag}", flush=True)


if __name__ == "__main__":
    main()
