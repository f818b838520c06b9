"""Several processes share one PostgreSQL policy: gunicorn (4 workers) plus a second app process.

A change made through the CLI reaches every worker of both servers within a second, through
PostgreSQL LISTEN/NOTIFY (and, as a net under it, the version poll).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_until

ROOT = Path(__file__).parents[2]
APP = "tests.e2e.sync_app:create_app()"
#: the processes answering: four gunicorn workers and a second, one-worker server
WORKERS = 5
#: bound of the waits for servers and workers: far above what they take on a loaded machine
BOOT_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(base: str, user: str = "carol", pause: float = 0.0) -> dict[str, Any]:
    url = f"{base}/decide?user={user}&pause={pause}"
    with urllib.request.urlopen(url, timeout=BOOT_TIMEOUT) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def serve(workers: int, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "2", "--timeout", "20",
        "--no-control-socket",  # else every gunicorn on the machine shares ~/.gunicorn/gunicorn.ctl
        APP,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text()}")
        ask(base)
        return True

    try:
        wait_until(answers, BOOT_TIMEOUT, lambda: f"gunicorn to answer:\n{log.read_text()}",
                   step=0.1, retry_on=(OSError,))  # fmt: skip
    except BaseException:
        process.terminate()
        process.wait(BOOT_TIMEOUT)
        raise
    return process, base


@pytest.fixture
def servers(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    env = {
        **os.environ,
        "GUARD_POLICY": postgres_url,
        "GUARD_WATCHER": postgres_url,
        "GUARD_WATCHER_INTERVAL": "5",
        "PYTHONPATH": str(ROOT),
    }
    first, first_base = serve(4, env, tmp_path / "first.log")
    try:
        second, second_base = serve(1, env, tmp_path / "second.log")
    except BaseException:
        first.terminate()
        first.wait(10)
        raise
    try:
        yield first_base, second_base, env
    finally:
        for process in (first, second):
            process.terminate()
        for process in (first, second):
            process.wait(BOOT_TIMEOUT)


def sweep(base: str, requests: int = 16) -> list[dict[str, Any]]:
    """Concurrent slow requests, so that every worker serves some of them."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: ask(base, pause=0.15), range(requests)))


def test_a_cli_change_reaches_every_worker_of_every_process(
    servers: tuple[str, str, dict[str, str]],
) -> None:
    first, second, env = servers
    before: list[dict[str, Any]] = []

    def every_worker_answered() -> bool:
        # Each worker's first request loads the policy and starts its watcher: all five must
        # have served one before the change, or a worker still booting would be measured.
        before.extend(sweep(first, 16) + sweep(second, 2))
        return len({answer["pid"] for answer in before}) >= WORKERS

    wait_until(every_worker_answered, BOOT_TIMEOUT,
               lambda: f"{WORKERS} processes to answer: {sorted({a['pid'] for a in before})}",
               step=0)  # fmt: skip
    assert not any(answer["allowed"] for answer in before)
    workers = {answer["pid"] for answer in before}

    changed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", APP, "guard", "role", "add", "carol", "employee"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    committed = time.monotonic()  # the CLI has exited: its commit and NOTIFY are done

    seen_new: dict[int, float] = {}

    def everyone_sees_it() -> bool:
        for answer in sweep(first, 16) + sweep(second, 2):
            if answer["allowed"]:
                seen_new.setdefault(answer["pid"], answer["at"] - committed)
            else:
                assert answer["pid"] not in seen_new, "a worker went back to the old policy"
        return workers <= seen_new.keys()

    # Bounded far above the version-read interval (5 s): a broken sync fails, slowly.
    wait_until(everyone_sees_it, BOOT_TIMEOUT,
               lambda: f"the new policy in every worker; still old: {workers - seen_new.keys()}",
               step=0)  # fmt: skip
    # Every worker decided with the new policy within 2 s of the commit, on its own clock (not
    # the end of the sweep that saw it): NOTIFY carried it. The version reads (every 5 s) alone
    # would pass this in all five processes about once in a hundred runs; the 2 s leave a loaded
    # machine room between a worker's requests.
    assert max(seen_new.values()) < 2.0, seen_new
