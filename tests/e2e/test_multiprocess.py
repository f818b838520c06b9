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

ROOT = Path(__file__).parents[2]
APP = "tests.e2e.sync_app:create_app()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(base: str, user: str = "carol", pause: float = 0.0) -> dict[str, Any]:
    url = f"{base}/decide?user={user}&pause={pause}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def serve(workers: int, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "2", "--timeout", "20", APP,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            ask(base)
            return process, base
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}") from None
            time.sleep(0.2)


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
            process.wait(15)


def sweep(base: str, requests: int = 16) -> list[dict[str, Any]]:
    """Concurrent slow requests, so that every worker serves some of them."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda _: ask(base, pause=0.15), range(requests)))


def test_a_cli_change_reaches_every_worker_of_every_process(
    servers: tuple[str, str, dict[str, str]],
) -> None:
    first, second, env = servers
    before = sweep(first, 24) + sweep(second, 4)
    assert not any(answer["allowed"] for answer in before)
    workers = {answer["pid"] for answer in before}
    assert len(workers) >= 5, f"only {len(workers)} processes answered: {workers}"

    changed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", APP, "guard", "role", "add", "carol", "employee"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    committed = time.monotonic()

    seen_new: dict[int, float] = {}
    deadline = committed + 3.0
    while time.monotonic() < deadline and not workers <= seen_new.keys():
        for answer in sweep(first, 16) + sweep(second, 2):
            if answer["allowed"]:
                seen_new.setdefault(answer["pid"], time.monotonic() - committed)
            else:
                assert answer["pid"] not in seen_new, "a worker went back to the old policy"
    assert workers <= seen_new.keys(), f"still on the old policy: {workers - seen_new.keys()}"
    # Every worker answers with the new policy: the slowest within a second of the commit,
    # give or take the time one sweep of concurrent requests takes to come back.
    assert max(seen_new.values()) < 1.5
