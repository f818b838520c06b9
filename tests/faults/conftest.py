"""Fixtures of the fault tests: private servers they may stop, a database and app env per test.

The servers are session-scoped (initdb takes under a second, but once is enough); each test gets
its own database on the private PostgreSQL and finds both servers running, whatever an earlier
test left behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faults.support import ROOT, PrivatePostgres, PrivateRedis

from conftest import require_service
from flask_casbin_guard import Flask
from flask_casbin_guard.pipeline import STATE_KEY


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        require_service("a private PostgreSQL (its driver psycopg)", error)
    try:
        server = PrivatePostgres()
    except (OSError, KeyError, RuntimeError) as error:
        require_service("a private PostgreSQL (initdb, pg_ctl)", error)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    try:
        import redis  # noqa: F401
    except ImportError as error:
        require_service("a private Redis (its driver redis-py)", error)
    try:
        server = PrivateRedis()
    except (OSError, RuntimeError) as error:
        require_service("a private Redis (redis-server)", error)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg(private_postgres: PrivatePostgres) -> PrivatePostgres:
    private_postgres.ensure_running()
    return private_postgres


@pytest.fixture
def database(pg: PrivatePostgres) -> Iterator[str]:
    """The name of a new, empty database on the private server, dropped after the test."""
    name = f"fault_{uuid.uuid4().hex[:12]}"
    pg.execute("postgres", f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        pg.ensure_running()
        pg.execute("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def app_env(pg: PrivatePostgres, database: str) -> dict[str, str]:
    """The environment of the app's processes (gunicorn, the CLI): policy and watcher on PG."""
    url = pg.url(database)
    return {
        **os.environ,
        "GUARD_POLICY": url,
        "GUARD_WATCHER": url,
        "GUARD_WATCHER_INTERVAL": "1",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def writer(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The fault app in this process: the Python API side of the tests (seeds, writes).

    Its watcher starts only if a test sends it a request; it is stopped at the end.
    """
    from tests.faults.fault_app import create_app

    for key in ("GUARD_POLICY", "GUARD_WATCHER", "GUARD_WATCHER_INTERVAL"):
        monkeypatch.setenv(key, app_env[key])
    app = create_app()
    yield app
    watcher = getattr(app.extensions.get(STATE_KEY), "_watcher", None)
    if watcher is not None:
        watcher.stop()  # before its database is dropped: no reconnection noise after the test


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path
