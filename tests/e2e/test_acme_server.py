"""README's first command: the acme server on 127.0.0.1 answers its printed curl examples."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from helpers import wait_until

ROOT = Path(__file__).parents[2]
#: bound of the wait for the server: far above the seconds it takes on a loaded 2-core machine
BOOT_TIMEOUT = 60.0
EXPECTED = re.compile(r"\s+#\s+(\d{3})\b.*$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the acme server exited ({process.returncode}):\n{log.read_text()}")
        # Not cut short: its first answer may take seconds on a loaded machine.
        urllib.request.urlopen(base + "/", timeout=BOOT_TIMEOUT).close()
        return True

    wait_until(answers, BOOT_TIMEOUT, lambda: f"the acme server to answer:\n{log.read_text()}",
               step=0.1, retry_on=(OSError,))  # fmt: skip


def examples_script(banner: str) -> tuple[str, list[int]]:
    """A bash script printing one status per example, and the statuses the banner claims."""
    script, expected = ["set -e"], []
    for line in (raw.strip() for raw in banner.splitlines()):
        if line.startswith("TOKEN="):
            script.append(line)
        elif line.startswith("curl -i "):
            match = EXPECTED.search(line)
            assert match, f"example without a claimed status: {line}"
            expected.append(int(match.group(1)))
            command = EXPECTED.sub("", line).replace(
                "curl -i ", "curl -s -o /dev/null -w '%{http_code}\\n' ", 1
            )
            script.append(command)
    return "\n".join(script), expected


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_printed_curl_examples_give_the_statuses_they_claim(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "acme.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.acme"],
            cwd=ROOT,
            env={
                **os.environ,
                "ACME_PORT": str(port),
                "ACME_POLICY": f"sqlite:///{tmp_path / 'acme.db'}",
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(base, process, log)
        script, expected = examples_script(log.read_text())
        assert len(expected) >= 10 and {200, 400, 401, 403} <= set(expected)
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert [int(code) for code in result.stdout.split()] == expected
    finally:
        process.terminate()
        process.wait(timeout=BOOT_TIMEOUT)
    text = log.read_text()
    requests_log = text.split("200 with a JWT", 1)[1]
    assert "GET /whoami" in requests_log
    # Credentials never reach the server's log, and nothing crashed.
    assert "alice-pass" not in requests_log and "Authorization" not in requests_log
    assert "Traceback" not in text
