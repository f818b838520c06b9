"""A corrupted policy pushed past validation (issue "Hardening" §3 d).

Rows are written straight into ``casbin_rule`` with SQL, the version is bumped and a NOTIFY sent,
as a careless script or a hand edit would. Every process must refuse the new policy as a whole,
keep deciding on the last good one, log the problem once, and take a later valid change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from tests.faults.fault_app import probe_of
from tests.faults.support import (
    PrivatePostgres,
    flask_guard,
    get,
    gunicorn,
    sweep,
)

from flask_casbin_guard import Flask
from helpers import wait_until

GOOD = {"alice": True, "bob": False, "carol": False, "dave": False}
#: bound of a wait for a change or a refusal to reach a process: its watchers read the version
#: every second or faster, so only a broken sync uses it up, even on a loaded machine
SYNC_TIMEOUT = 30.0

#: invalid pushes: each also grants bob ``employee`` with a valid row, which must not leak in
CORRUPTIONS = {
    "too few values": "('p', 'mallory', 'store:1', NULL)",
    "unknown ptype": "('x', 'mallory', 'employee', NULL)",
    "NULL ptype": "(NULL, 'mallory', 'employee', NULL)",
    "control character": "('g', E'mal\\nlory', 'employee', NULL)",
    "quoted value": "('g', '\"mallory\"', 'employee', NULL)",
    "role cycle": "('g', 'employee', 'bob', NULL)",
}


def push(pg: PrivatePostgres, database: str, *rows: str, delete: str | None = None) -> int:
    """Write rows with SQL, bump the version and NOTIFY it, in one transaction; the version."""
    # The SQL is the test's own constants: corrupting the table is the point.
    statements = [f"DELETE FROM casbin_rule WHERE {delete}"] if delete else []  # noqa: S608
    statements += [f"INSERT INTO casbin_rule (ptype, v0, v1, v2) VALUES {r}" for r in rows]  # noqa: S608
    bump = "UPDATE casbin_guard_version SET version = version + 1 WHERE name = 'casbin_rule'"
    pg.execute(database, *statements, bump,
               "SELECT pg_notify('casbin_guard', version::text) FROM casbin_guard_version")  # fmt: skip
    return int(pg.query(database, "SELECT version FROM casbin_guard_version")[0][0])


def reload_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "policy reload failed" in r.getMessage()]


@pytest.mark.parametrize("corruption", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_process_refuses_a_corrupted_push_and_keeps_its_policy(
    pg: PrivatePostgres, database: str, writer: Flask, corruption: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    writer.config.update(GUARD_WATCHER_INTERVAL=0.05)  # polled fast: many chances to re-log
    with writer.app_context():
        writer.guard.policies.add_role("alice", "employee")
    client = writer.test_client()
    assert (
        client.get("/staff", headers={"X-Remote-User": "alice"}).status_code == 200
    )  # starts the watcher

    probe = probe_of(writer)  # counts this process's version reads from now on
    with caplog.at_level(logging.ERROR, "flask_casbin_guard"):
        push(pg, database, "('g', 'bob', 'employee', NULL)", corruption)
        wait_until(lambda: reload_errors(caplog), SYNC_TIMEOUT, "the reload failure logged")
        # Six more version reads, each seeing the same bad version: none may log again.
        reads = probe.reads
        wait_until(lambda: probe.reads >= reads + 6, SYNC_TIMEOUT,
                   lambda: f"6 version reads after {reads} (at {probe.reads})")  # fmt: skip
    assert len(reload_errors(caplog)) == 1, reload_errors(caplog)
    assert "casbin_rule" in reload_errors(caplog)[0] or "cycle" in reload_errors(caplog)[0]
    statuses = {
        user: client.get("/staff", headers={"X-Remote-User": user}).status_code
        for user in ("alice", "bob", "mallory")
    }
    assert statuses == {"alice": 200, "bob": 403, "mallory": 403}
    with writer.app_context():
        assert not writer.guard.has_role("bob", "employee")

    # Repaired by hand, then a valid change: both are taken.
    push(pg, database, "('g', 'carol', 'employee', NULL)", delete="v0 = 'mallory' OR ptype IS NULL "
         "OR ptype = 'x' OR v0 = '' OR v0 LIKE '%lory%' OR (v0 = 'employee' AND v1 = 'bob')")  # fmt: skip
    wait_until(
        lambda: client.get("/staff", headers={"X-Remote-User": "carol"}).status_code == 200,
        SYNC_TIMEOUT,
        "carol's role, pushed after the repair",
    )
    assert client.get("/staff", headers={"X-Remote-User": "bob"}).status_code == 200


def test_every_worker_refuses_a_corrupted_push_then_takes_a_valid_change(
    pg: PrivatePostgres, database: str, app_env: dict[str, str], writer: Flask, logs: Path
) -> None:
    with writer.app_context():
        writer.guard.policies.add_role("alice", "employee")
    with gunicorn(app_env, logs / "gunicorn.log") as server:
        workers = set(server.all_workers())
        push(pg, database, "('g', 'bob', 'employee', NULL)", "('p', 'mallory', 'store:1', NULL)")

        def failures() -> list[str]:
            return [line for line in server.text().splitlines() if "policy reload failed" in line]

        wait_until(lambda: len(failures()) >= len(workers), SYNC_TIMEOUT,
                   lambda: f"{len(workers)} workers to log the refusal:\n{server.text()}")  # fmt: skip
        # At least one more version read in every worker, seeing the same bad version.
        reads = {pid: probe["reads"] for pid, probe in server.probes().items()}
        probes: dict[int, dict[str, Any]] = {}

        def every_worker_read_again() -> bool:
            probes.update(server.probes())
            return all(probes[pid]["reads"] > count for pid, count in reads.items())

        wait_until(every_worker_read_again, SYNC_TIMEOUT,
                   lambda: f"a version read in every worker after {reads}: {probes}", step=0)  # fmt: skip
        after = {pid: probe["employee"] for pid, probe in probes.items()}
        assert set(after) == workers and all(roles == GOOD for roles in after.values()), after
        for user, status in (("alice", 200), ("bob", 403), ("mallory", 403)):
            assert {a.status for a in sweep(server.base, "/staff", user)} == {status}
        assert len(failures()) == len(workers), failures()  # once per worker, not per read
        assert all("casbin_rule id" in line for line in failures()), failures()
        assert "Traceback" not in server.text()

        # The CLI refuses to work on a corrupted store, in one line naming the row.
        refused = flask_guard(app_env, "role", "add", "carol", "employee")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().count("\n") == 0 and "casbin_rule id" in refused.stderr

        # Repaired by hand, then a valid change through the CLI reaches every worker.
        push(pg, database, delete="v0 = 'mallory'")
        changed = flask_guard(app_env, "role", "add", "carol", "employee")
        assert changed.returncode == 0, changed.stderr
        want = {**GOOD, "bob": True, "carol": True}
        wait_until(lambda: all(r == want for r in server.all_workers().values()), SYNC_TIMEOUT,
                   lambda: f"every worker on {want}: {server.all_workers()}", step=0)  # fmt: skip
        assert get(server.base, "/staff", "carol").status == 200
