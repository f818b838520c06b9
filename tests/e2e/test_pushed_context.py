"""Every request is decided for its own caller, even when the app pushed a context at import.

The app (``pushed_context_app``) pushes its application context once, as Flask-SQLAlchemy apps
often do at module level; every request of the process then shares that context and its
``flask.g``. Checked with the test client and under a real gunicorn sync worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from tests.e2e.pushed_context_app import PASSWORDS, create_app

from helpers import basic

ROOT = Path(__file__).parents[2]
CALLERS = {login: basic(login, password) for login, password in PASSWORDS.items()}
CALLERS["anonymous"] = {}

#: (caller, path) -> (status, user the view saw): alternating callers on one process
SEQUENCE = [
    ("alice", "/staff", 200, "alice"),
    ("anonymous", "/staff", 401, None),
    ("dave", "/staff", 403, None),
    ("bob", "/staff", 200, "bob"),
    ("anonymous", "/whoami", 200, None),
    ("dave", "/whoami", 200, "dave"),
    ("dave", "/report", 200, "dave"),
    ("alice", "/report", 403, None),
    ("anonymous", "/report", 401, None),
    ("bob", "/store/7", 200, "bob"),
    ("alice", "/store/7", 403, None),
    ("anonymous", "/store/7", 401, None),
    ("alice", "/whoami", 200, "alice"),
    ("anonymous", "/whoami", 200, None),
]


def check_sequence(send: Any) -> set[int]:
    """Send :data:`SEQUENCE` in order; every answer is the one its own caller deserves."""
    pids = set()
    for who, path, status, user in SEQUENCE:
        got_status, body, headers = send(path, CALLERS[who])
        assert (who, path, got_status) == (who, path, status), body
        assert headers.get("X-Caller") == (who if who != "anonymous" else "-"), (who, path)
        if status == 200:
            assert body["user"] == user, (who, path, body)
            pids.add(body["pid"])
    return pids


@pytest.fixture
def pushed() -> Iterator[Flask]:
    app = create_app(TESTING=True)
    context = app.app_context()
    context.push()
    try:
        yield app
    finally:
        context.pop()


def test_identity_is_per_request_under_a_pushed_app_context(pushed: Flask) -> None:
    client = pushed.test_client()

    def send(path: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
        response = client.get(path, headers=headers)
        return response.status_code, response.json, response.headers

    check_sequence(send)
    check_sequence(send)  # and again, now that every caller has been seen once


def test_explanations_are_per_request_under_a_pushed_app_context() -> None:
    app = create_app(TESTING=True, GUARD_MODE="dev")
    with app.app_context():
        client = app.test_client()
        first = client.get("/report", headers=CALLERS["dave"])
        second = client.get("/store/7", headers=CALLERS["bob"])
    assert first.status_code == second.status_code == 200
    assert "/report" in first.headers["X-Guard-Explain"]
    assert second.headers["X-Guard-Explain"].startswith("allow manager store:7")
    assert "/report" not in second.headers["X-Guard-Explain"]


# --- under gunicorn --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(base: str, path: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read()), error.headers


@pytest.fixture(scope="module")
def sync_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gunicorn sync worker: every request of the test is served by the same process."""
    log = tmp_path_factory.mktemp("pushed") / "gunicorn.log"
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--timeout", "20",
        "tests.e2e.pushed_context_app:serve()",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(base, "/whoami", {})
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
        process.wait(15)


def test_identity_is_per_request_under_a_gunicorn_sync_worker(sync_worker: str) -> None:
    def send(path: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
        return fetch(sync_worker, path, headers)

    pids = check_sequence(send) | check_sequence(send)
    assert len(pids) == 1  # one process served them all, inside one pushed app context
