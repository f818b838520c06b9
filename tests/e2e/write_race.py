"""Processes and threads racing random grants and revocations on one policy database.

Each worker process opens the store, builds its policy manager once and never reloads on its
own, so its memory lags every other process's writes (as between watcher rounds, only more).
Its threads share that manager and call ``write`` with random ``g`` and ``p`` rows over a few
names, so role cycles are often one write away. Every call is recorded with the store version
it was decided against (``seen``) and the one it committed (``version``). A CSV file (``--url``
a path) works too: its versions are hashes, so the calls are ordered by stamps taken under the
writers' lock instead (:class:`Stamped`).

:func:`verify` then checks that the calls are one serial history: the committed versions are
``1..final`` with no gap or repeat, each ``seen + 1``; replaying the committed calls in version
order gives the final store; each call's answer is right for the state it saw (an add that
changed nothing saw the row, a refusal saw a policy the row would make cyclic); and every
process, told to reload at the end as its watcher would be, holds the final policy.

Run by hand for a larger race (the test suite runs a small one)::

    python -m tests.e2e.write_race --url sqlite:////tmp/race.db --processes 4 --threads 4 --ops 100
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from flask_casbin_guard.authz.engine import EngineHolder, PolicyEngine
from flask_casbin_guard.authz.roles import check_role_depth
from flask_casbin_guard.errors import PolicyError, PolicyRejected
from flask_casbin_guard.policies import PolicyManager
from flask_casbin_guard.store.base import Change, Planner, PolicyStore
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.csvstore import CsvStore
from flask_casbin_guard.store.database import DatabaseStore

ROOT = Path(__file__).parents[2]
MODEL = (ROOT / "tests" / "policies" / "rbac_model.conf").read_text()
ARITIES = {"p": 3, "g": 2}
NAMES = [f"n{k}" for k in range(5)]

Row = tuple[str, ...]


def random_row(rng: random.Random) -> PolicyRow:
    if rng.random() < 0.7:
        member, role = rng.sample(NAMES, 2)
        return PolicyRow("g", (member, role))
    return PolicyRow("p", (rng.choice(NAMES), "data", rng.choice(["read", "write"])))


def open_store(url: str) -> PolicyStore:
    """A database store for a URL, a CSV file store for a path."""
    if "://" in url:
        return DatabaseStore(url, ARITIES)
    return CsvStore(url, ARITIES, create=True)


class Stamped:
    """A store whose writes stamp their place in the serial order.

    A CSV file's version is a hash of its bytes, which repeats when a row comes and goes: the
    stamp is taken inside the plan, which runs under the writers' lock (CLOCK_MONOTONIC is one
    clock for every process), so stamps order the writes as they happened.
    """

    def __init__(self, store: PolicyStore) -> None:
        self.store = store
        self.stamp = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write(self, plan: Planner, progress: Any = None) -> tuple[int, int]:
        def inner(version: int, load: Any) -> Change:
            self.stamp.value = time.monotonic_ns()
            return plan(version, load)

        return self.store.write(inner, progress)


def worker(url: str, seed: int, ops: int, threads: int) -> None:
    """One process: race, print the records, then (told to) reload and print its policy."""
    store = open_store(url)
    version, rows = store.load_versioned(ARITIES)
    stamped = Stamped(store)
    holder = EngineHolder(PolicyEngine(MODEL, rows))
    manager = PolicyManager(MODEL, "race", cast(PolicyStore, stamped), holder)
    manager.version = version
    records: list[dict[str, Any]] = []
    start = threading.Barrier(threads)

    def run(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        start.wait()
        for _ in range(ops):
            row, adding = random_row(rng), rng.random() < 0.6
            record: dict[str, Any] = {"add": adding, "row": [row.ptype, *row.values]}
            try:
                written = manager.write(added=[row]) if adding else manager.write(removed=[row])
                record.update(result=bool(written.count), seen=written.seen)
                record.update(version=written.version)
            except PolicyRejected as error:
                record.update(result="refused", seen=error.version, version=None)
            record["stamp"] = stamped.stamp.value
            records.append(record)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps(records), flush=True)
    sys.stdin.readline()  # every process has finished writing: converge
    manager.reload()
    print(json.dumps([[row.ptype, *row.values] for row in manager.holder.engine.rows]), flush=True)
    store.close()


def race(url: str, processes: int, threads: int, ops: int, timeout: float = 120) -> dict[str, Any]:
    """Run the race and verify it; return the counts."""
    open_store(url).close()  # the schema (or file), before the processes race to create it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    command = [sys.executable, "-m", "tests.e2e.write_race", "--url", url, "--worker"]
    children = [
        subprocess.Popen(
            [*command, str(seed), "--threads", str(threads), "--ops", str(ops)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(processes)
    ]
    deadline = time.monotonic() + timeout
    try:
        records = [json.loads(_line(child, deadline)) for child in children]
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        finals = [json.loads(_line(child, deadline)) for child in children]
        for child in children:
            child.wait(max(1.0, deadline - time.monotonic()))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    store = open_store(url)
    try:
        version, stored = store.load_versioned(ARITIES)
    finally:
        store.close()
    calls = [record for per_process in records for record in per_process]
    if "://" not in url:
        calls, version = by_stamp(calls)
    return verify(calls, version, [tuple([row.ptype, *row.values]) for row in stored], finals)


def by_stamp(calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The calls with counter versions from their stamps (for stores whose versions are hashes):
    a committed call is the n-th write, and every call saw the writes stamped before it."""
    stamps = sorted(c["stamp"] for c in calls if c["result"] is True)
    renumbered = []
    for call in calls:
        seen = bisect.bisect_left(stamps, call["stamp"])
        version = (
            seen + 1 if call["result"] is True else (None if call["version"] is None else seen)
        )
        renumbered.append({**call, "seen": seen, "version": version})
    return renumbered, len(stamps)


def _line(child: subprocess.Popen[str], deadline: float) -> str:
    assert child.stdout is not None
    # Each worker prints one line per phase and waits: nothing is left buffered, so select on
    # the pipe bounds the wait for a hung worker (the caller then kills it).
    ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = child.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"worker {child.pid} gave no answer (exit status {child.poll()})")
    return line


def verify(
    calls: list[dict[str, Any]],
    final_version: int,
    stored: Sequence[Row],
    finals: Sequence[Sequence[Sequence[str]]],
) -> dict[str, Any]:
    """Check that the recorded calls are one serial history ending in ``stored``."""
    committed = sorted((c for c in calls if c["version"] != c["seen"] and c["version"]), key=_ver)
    assert [c["version"] for c in committed] == list(range(1, final_version + 1)), "version gap"
    states: dict[int, frozenset[Row]] = {0: frozenset()}
    state: set[Row] = set()
    for call in committed:
        row = tuple(call["row"])
        assert call["seen"] + 1 == call["version"]
        assert call["result"] is True
        assert (row in state) != call["add"], f"version {call['version']}: {call} saw {state}"
        if call["add"]:
            state.add(row)
        else:
            state.discard(row)
        states[call["version"]] = frozenset(state)
    noops = refused = 0
    for call in calls:
        row, seen = tuple(call["row"]), call["seen"]
        if call["result"] is False:
            noops += 1
            assert (row in states[seen]) == call["add"], f"{call} saw {sorted(states[seen])}"
        elif call["result"] == "refused":
            refused += 1
            links = [r[1:] for r in states[seen] | {row} if r[0] == "g"]
            try:
                check_role_depth(links)
            except PolicyError:
                continue
            raise AssertionError(f"{call} refused, though the policy it saw stays valid")
    assert len(stored) == len(set(stored)), "a row is stored twice"
    final_equal = set(stored) == states[final_version]
    converged = sum(1 for rows in finals if {tuple(row) for row in rows} == set(stored))
    assert final_equal, "the final store is not the replay of the committed calls"
    assert converged == len(finals), "a process did not converge on the final store"
    return {
        "calls": len(calls),
        "writes": len(committed),
        "unchanged": noops,
        "conflicts_refused": refused,
        "final_rows": len(stored),
        "final_equal": final_equal,
        "processes_converged": f"{converged}/{len(finals)}",
    }


def _ver(call: dict[str, Any]) -> int:
    return int(call["version"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ops", type=int, default=100, help="calls per thread")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.url, args.worker, args.ops, args.threads)
        return
    started = time.monotonic()
    counts = race(args.url, args.processes, args.threads, args.ops, timeout=1800)
    counts["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
