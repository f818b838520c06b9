"""A gunicorn worker killed with SIGKILL (issue "Hardening" §3 c).

The master is paused (SIGSTOP) while the worker is dead, so the policy change is certainly made
before the replacement exists; then it forks the replacement, which must answer with the new
policy from its very first request. With ``--preload`` and the policy loaded in the master (as an
extension-style app does in ``init_app``), the replacement is forked with the master's old
policy in memory: the case that can go wrong.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from tests.faults.support import BOOT_TIMEOUT, Answer, gunicorn, sweep

from flask_casbin_guard import Flask
from helpers import wait_until


@pytest.mark.parametrize(
    "prepared_in_master", [False, True], ids=["lazy-policy", "policy-loaded-in-master"]
)
def test_a_replacement_worker_sees_the_change_made_while_its_predecessor_was_dead(
    app_env: dict[str, str], writer: Flask, logs: Path, prepared_in_master: bool
) -> None:
    with writer.app_context():
        writer.guard.policies.add_role("alice", "employee")
    env = {**app_env, "GUARD_WATCHER_INTERVAL": "30"}  # a replacement may not rely on the poll
    if prepared_in_master:
        env["FAULT_PREPARE_AT_IMPORT"] = "1"
    with gunicorn(env, logs / "gunicorn.log") as server:
        before = server.all_workers()
        assert all(roles["alice"] and not roles["carol"] for roles in before.values())
        victim = min(before)

        survivors = set(before) - {victim}
        latest: dict[int, bool] = {}

        def survivors_see_carol() -> bool:
            latest.update((a.pid, a.body["employee"]["carol"]) for a in sweep(server.base))
            return all(latest.get(pid) for pid in survivors)

        server.signal_master(signal.SIGSTOP)
        try:
            os.kill(victim, signal.SIGKILL)
            with writer.app_context():
                assert writer.guard.policies.add_role("carol", "employee")
            # The survivors hear of it (NOTIFY) while the victim is dead and not yet replaced.
            wait_until(survivors_see_carol, BOOT_TIMEOUT,
                       lambda: f"carol's role in the survivors {survivors}: {latest}", step=0)  # fmt: skip
        finally:
            server.signal_master(signal.SIGCONT)

        answers: list[Answer] = []

        def replaced() -> bool:
            answers.extend(sweep(server.base))
            return bool({a.pid for a in answers} - set(before))

        wait_until(replaced, BOOT_TIMEOUT, lambda: f"a replacement of {victim} to answer "
                   f"(answered: {sorted({a.pid for a in answers})})\n{server.text()}", step=0)  # fmt: skip
        pids = {answer.pid for answer in answers}
        assert victim not in pids
        replacements = pids - set(before)
        assert len(replacements) == 1, replacements
        assert len(pids) == server.workers
        # Every answer, the replacement's first one included, is on the new policy.
        stale = [(a.pid, a.body["employee"]) for a in answers if not a.body["employee"]["carol"]]
        assert not stale, f"answers on the old policy (replacement {replacements}): {stale}"
        assert "Traceback" not in server.text()
