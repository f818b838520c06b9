"""Policy writes are decided against the store inside the write transaction (issue 17, item 1).

Two managers on one database stand for two processes: neither reloads, so each one's memory lags
the other's writes, as it does for up to ``GUARD_WATCHER_INTERVAL`` between real processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import POLICIES
from e2e.write_race import race
from flask_casbin_guard import Flask
from flask_casbin_guard.authz.engine import EngineHolder, PolicyEngine
from flask_casbin_guard.errors import PolicyError, PolicyRejected
from flask_casbin_guard.pipeline import STATE_KEY
from flask_casbin_guard.policies import PolicyManager
from flask_casbin_guard.store.base import PolicyStore
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.csvstore import CsvStore
from flask_casbin_guard.store.database import DatabaseStore

MODEL = (POLICIES / "rbac_model.conf").read_text()
ARITIES = {"p": 3, "g": 2}


@pytest.fixture(params=["csv", "sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[PolicyStore]]:
    """Two stores on one policy, as two processes would open it."""
    opened: list[PolicyStore] = []
    if request.param == "csv":
        path = tmp_path / "policy.csv"
        path.write_text("")
        opened = [CsvStore(path, ARITIES), CsvStore(path, ARITIES)]
    else:
        url = (
            f"sqlite:///{tmp_path / 'policy.db'}"
            if request.param == "sqlite"
            else str(request.getfixturevalue("postgres_url"))
        )
        opened = [DatabaseStore(url, ARITIES), DatabaseStore(url, ARITIES)]
    yield opened
    for store in opened:
        store.close()


def manager(store: PolicyStore) -> PolicyManager:
    version, rows = store.load_versioned(ARITIES)
    built = PolicyManager(MODEL, "test", store, EngineHolder(PolicyEngine(MODEL, rows)))
    built.version = version
    return built


def test_a_revocation_through_a_stale_process_removes_the_grant(
    stores: list[PolicyStore],
) -> None:
    first, second = manager(stores[0]), manager(stores[1])
    assert first.add_role("bob", "admin") is True
    # second has not seen the grant; its revocation must still find it in the store.
    assert second.remove_role("bob", "admin") is True
    assert stores[0].load(ARITIES) == []
    assert not second.holder.engine.has_role("bob", "admin")
    assert first.reload() is True and first.list() == []


def test_a_grant_through_a_stale_process_is_answered_from_the_store(
    stores: list[PolicyStore],
) -> None:
    first, second = manager(stores[0]), manager(stores[1])
    assert first.add_role("bob", "admin") is True
    assert second.add_role("bob", "admin") is False  # already granted: nothing written
    assert stores[0].load(ARITIES) == [PolicyRow("g", ("bob", "admin"))]
    assert second.holder.engine.has_role("bob", "admin")  # and second caught up meanwhile


def test_two_writes_valid_alone_cannot_commit_a_role_cycle(stores: list[PolicyStore]) -> None:
    first, second = manager(stores[0]), manager(stores[1])
    first.add_role("a", "b")
    with pytest.raises(PolicyError, match="role cycle") as refused:
        second.add_role("b", "a")  # valid against second's memory, a cycle in the store
    assert "g, a, b" in str(refused.value) and "g, b, a" in str(refused.value)
    assert stores[0].load(ARITIES) == [PolicyRow("g", ("a", "b"))]
    fresh = manager(stores[1])  # a process starting now still loads the policy
    assert fresh.holder.engine.has_role("a", "b")


def test_a_stale_write_keeps_the_rows_written_meanwhile(stores: list[PolicyStore]) -> None:
    first, second = manager(stores[0]), manager(stores[1])
    first.add("p", "admin", "data", "read")
    second.add("p", "admin", "data", "write")
    expected = {("p", "admin", "data", "read"), ("p", "admin", "data", "write")}
    assert set(second.list()) == expected
    first.remove("p", "admin", "data", "read")
    assert set(second.list()) == expected  # second has not reloaded: its memory is older
    second.reload()
    assert second.list() == [("p", "admin", "data", "write")]
    assert [tuple(row.values) for row in stores[0].load(ARITIES)] == [("admin", "data", "write")]


@pytest.mark.parametrize(
    "backend", ["csv", "sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
)
def test_racing_processes_and_threads_commit_one_serial_history(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """3 processes x 2 threads x 15 random grants and revocations (the by-hand run is larger:
    ``python -m tests.e2e.write_race``, counts in docs/security.md)."""
    url = {
        "csv": str(tmp_path / "race.csv"),
        "sqlite": f"sqlite:///{tmp_path / 'race.db'}",
    }.get(backend) or str(request.getfixturevalue("postgres_url"))
    counts = race(url, processes=3, threads=2, ops=15, timeout=90)
    print(backend, counts)
    assert counts["calls"] == 90 and counts["final_equal"]
    assert counts["writes"] > 0 and counts["processes_converged"] == "3/3"


def test_a_process_meeting_an_invalid_stored_policy_keeps_its_last_good_one(
    guard_config: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'policy.db'}"
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=url, GUARD_WATCHER="poll:20ms")
    with app.app_context():
        app.guard.policies.add_role("a", "b")
    app.extensions[STATE_KEY].ensure_ready()  # starts the watcher, as a first request would
    caplog.set_level(logging.ERROR, logger="flask_casbin_guard")
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # a role cycle written by a tool bypassing the guard
        connection.exec_driver_sql("INSERT INTO casbin_rule (ptype, v0, v1) VALUES ('g', 'b', 'a')")
        connection.exec_driver_sql("UPDATE casbin_guard_version SET version = version + 1")
    engine.dispose()
    deadline = time.monotonic() + 10
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.02)
    message = caplog.records[0].getMessage()
    assert "keeping the previous policy" in message
    assert "g, a, b" in message and "g, b, a" in message  # the rows at fault
    with app.app_context():
        assert app.guard.policies.list() == [("g", "a", "b")]
        with pytest.raises(PolicyError, match="stored policy cannot be loaded") as refused:
            app.guard.policies.add_role("c", "d")  # refused, not stacked on a broken policy
        assert not isinstance(refused.value, PolicyRejected)  # the store's fault, not the call's
