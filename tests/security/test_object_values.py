"""Object values with dot segments never reach Casbin, an object loader or the view.

``keyMatch("file:public/../secret.txt", "file:public/*")`` is true: a ``<path:...>`` value (or
any other object parameter) holding ``..`` would escape the prefix rule. WSGI servers decode
``%2e%2e`` and ``..%2f`` before routing, so those spellings arrive as dot segments too; the
last part sends them byte for byte to gunicorn.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from tests.security.dot_segments_app import POLICY, create_app

ROOT = Path(__file__).parents[2]
ALICE = {"X-Fake-User": "alice"}

#: targets under /files/ that must be refused: each names something outside public/
ESCAPES = [
    "public/../secret.txt",
    "public/%2e%2e/secret.txt",
    "public/%2E%2E/secret.txt",
    "public/..%2fsecret.txt",
    "public/%2e%2e%2fsecret.txt",
    "public/..%5csecret.txt",
    "public/..%5Csecret.txt",
    "public/./../secret.txt",
    "public/.",
    "public/..",
    "public/%252e%252e/secret.txt",
    "public/..%252fsecret.txt",
]
#: look alike but stay inside public/
INSIDE = ["public/a.txt", "public/...txt", "public/..hidden", "public/a..b/c", "public/%2e.txt"]


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY)
    return create_app(str(policy))


def test_casbin_itself_lets_dot_segments_escape_a_prefix(app: Flask) -> None:
    # Why the guard must decide: the policy engine (like pycasbin) matches the raw string.
    with app.app_context():
        assert app.extensions["casbin_guard"].enforce("alice", "file:public/../secret.txt", "read")


@pytest.mark.parametrize("target", ESCAPES)
def test_path_values_with_dot_segments_are_refused(app: Flask, target: str) -> None:
    response = app.test_client().get(f"/files/{target}", headers=ALICE)
    assert response.status_code == 400, response.json
    (detail,) = response.json["details"]
    assert detail["param"] == "name" and detail["source"] == "path"
    assert detail["expected"] == "a value without '.' or '..' path segments"
    assert app.extensions["served"] == []


@pytest.mark.parametrize("target", INSIDE)
def test_look_alikes_inside_the_prefix_are_served(app: Flask, target: str) -> None:
    response = app.test_client().get(f"/files/{target}", headers=ALICE)
    assert response.status_code == 200, response.json
    assert app.extensions["served"] == [response.json["name"]]


def test_every_source_and_converter_is_checked(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/read?name=public/../secret.txt", headers=ALICE).status_code == 400
    assert client.get("/read?name=public/a.txt", headers=ALICE).status_code == 200
    body = {"name": "public/../secret.txt"}
    refused = client.post("/read", json=body, headers=ALICE)
    assert refused.status_code == 400 and refused.json["details"][0]["param"] == "name"
    # A plain <name> segment can be exactly "..": and an object loader never sees it.
    assert client.get("/docs/..", headers=ALICE).status_code == 400
    assert client.get("/docs/%2e%2e", headers=ALICE).status_code == 400
    assert client.get("/docs/public-a", headers=ALICE).status_code == 200
    assert app.extensions["loaded"] == ["public-a"]
    # Every object parameter of a route is checked, and all problems come in one 400.
    both = client.get("/notes/./../z", headers=ALICE)  # a=".", b="../z"
    assert both.status_code == 400
    assert {d["param"] for d in both.json["details"]} == {"a", "b"}
    assert app.extensions["served"] == ["public/a.txt", "public-a"]


def test_authentication_comes_first(app: Flask) -> None:
    assert app.test_client().get("/files/public/../secret.txt").status_code == 401


# --- byte for byte through gunicorn ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_get(port: int, target: bytes) -> int:
    """The status of ``GET <target>`` sent exactly as given, on its own connection."""
    request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fake-User: alice\r\n" % target
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request + b"Connection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return int(b"".join(chunks).split(b" ", 2)[1])


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("dots")
    (tmp / "policy.csv").write_text(POLICY)
    port = free_port()
    log = tmp / "gunicorn.log"
    target = f"tests.security.dot_segments_app:create_app({str(tmp / 'policy.csv')!r})"
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "2", "--timeout", "20", target,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                raw_get(port, b"/files/public/a.txt")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(15)


def test_raw_dot_segments_through_gunicorn(gunicorn: int) -> None:
    assert raw_get(gunicorn, b"/files/public/a.txt") == 200
    for target in [*ESCAPES, "public\\..\\secret.txt", "public/../../etc/passwd"]:
        assert raw_get(gunicorn, b"/files/" + target.encode()) == 400, target
    for target in INSIDE:
        assert raw_get(gunicorn, b"/files/" + target.encode()) == 200, target
