"""Private PostgreSQL and Redis servers the fault tests may stop, and a gunicorn to run against.

Never the machine's shared servers (5432, 6379): these live in temporary directories, listen on
free ports of 127.0.0.1 and are stopped at the end of the session.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from helpers import wait_until

ROOT = Path(__file__).parents[2]
APP = "tests.faults.fault_app:create_app()"
PG_BIN = Path(os.environ.get("GUARD_FAULTS_PG_BIN", "/usr/local/bin"))
#: a password in every URL: trust authentication ignores it, and no message may show it
PASSWORD = "fault-s3cret-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: bound of the waits for a server or worker to come up: far above the 1-3 s they take on a
#: 2-core machine with one core kept busy, so that only a server that is really stuck fails
BOOT_TIMEOUT = 60.0


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: ``initdb`` in a temporary directory, trust auth.

    initdb and the server refuse to run as root, so they run as the ``postgres`` OS user then.
    """

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if not (PG_BIN / tool).exists():
                raise FileNotFoundError(f"{PG_BIN / tool} is missing")
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="guard-faults-pg-"))
        self.data = self.base / "data"
        self._user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")  # KeyError: no such user
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip
        self.start()

    def _run(self, tool: str, *args: object, check: bool = True) -> None:
        command = [*self._user, str(PG_BIN / tool), *map(str, args)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._run("pg_ctl", "-D", self.data, "-l", self.base / "server.log", "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        """Stop the server: ``-m fast`` ends every session, as a restart by an operator does."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def execute(self, database: str, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
        """Run statements in one transaction (autocommit for a lone CREATE/DROP DATABASE)."""
        import psycopg

        autocommit = len(statements) == 1 and "DATABASE" in str(statements[0])
        with psycopg.connect(self.url(database, "postgresql"), autocommit=autocommit) as conn:
            for statement in statements:
                query, params = statement if isinstance(statement, tuple) else (statement, ())
                # The tests' own constant SQL: psycopg's annotations ask for a LiteralString.
                conn.execute(cast(Any, query), params or None)

    def query(self, database: str, query: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(database, "postgresql"), autocommit=True) as conn:
            return list(conn.execute(cast(Any, query)).fetchall())

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateRedis:
    """A ``redis-server`` subprocess without persistence, restartable on the same port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise FileNotFoundError("redis-server is not on PATH")
        self.port = free_port()
        self.log = Path(tempfile.mkdtemp(prefix="guard-faults-redis-")) / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--daemonize", "no",
                   "--requirepass", PASSWORD, "--logfile", str(self.log)]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self._answers, BOOT_TIMEOUT, f"redis-server to answer PING on {self.port}")

    def _answers(self) -> bool:
        import redis

        process = self.process
        if process is not None and process.poll() is not None:
            # Exited, e.g. its port taken while it was down: no use waiting for it.
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"redis-server exited ({process.returncode}): {log[-1000:]}")
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(BOOT_TIMEOUT)
            self.process = None

    def subscribers(self, channel: str) -> int:
        import redis

        with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
            return int(dict(client.pubsub_numsub(channel))[channel.encode()])

    def clients(self) -> str:
        """Who is connected, for a failure message: name, last command, age."""
        import redis

        with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
            listing = client.client_list()
        return ", ".join(f"{c['name'] or '-'} {c['cmd']} {c['age']}s" for c in listing)

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.log.parent, ignore_errors=True)


# -- the app under gunicorn -----------------------------------------------------------------


@dataclass
class Answer:
    status: int
    pid: int
    body: dict[str, Any]


def get(base: str, path: str, user: str | None = None, timeout: float = 10) -> Answer:
    """One request; an HTTP error status is an answer, not an exception."""
    headers = {"X-Remote-User": user} if user else {}
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, pid, text = response.status, response.headers["X-Worker-Pid"], response.read()
    except urllib.error.HTTPError as error:
        status, pid, text = error.code, error.headers.get("X-Worker-Pid", "0"), error.read()
    try:
        body = json.loads(text)
    except ValueError:
        body = {"raw": text[:200].decode("utf-8", "replace")}
    return Answer(status, int(pid or 0), body)


def sweep(base: str, path: str = "/check?pause=0.15", user: str | None = None,
          requests: int = 12) -> list[Answer]:  # fmt: skip
    """Concurrent slow requests, so that every worker serves some of them."""
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda _: get(base, path, user), range(requests)))


def employees(answers: Iterable[Answer]) -> dict[int, dict[str, bool]]:
    """Each worker's last ``/check`` answer: which users hold ``employee``."""
    return {answer.pid: answer.body["employee"] for answer in answers}


class Gunicorn:
    """``gunicorn`` serving :data:`APP`; stopped by :meth:`stop`.

    ``preload`` (the default, for speed) imports the app once in the master: forking a worker
    then takes milliseconds instead of a second of imports. The app's guard still loads its
    policy in each worker, at its first request, unless ``FAULT_PREPARE_AT_IMPORT=1``.
    """

    def __init__(self, env: dict[str, str], log: Path, workers: int = 3,
                 preload: bool = True) -> None:  # fmt: skip
        self.workers = workers
        self.log = log
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--workers", str(workers),
                   "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--timeout", "20",
                   # Every gunicorn on the machine would share ~/.gunicorn/gunicorn.ctl otherwise
                   "--no-control-socket",
                   *(["--preload"] if preload else []), APP]  # fmt: skip
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends it and its workers
            )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        try:
            # The first request also loads the policy in the worker that takes it: it may take
            # seconds on a loaded machine, so it is not cut short (which would only retry it).
            wait_until(self._answers, BOOT_TIMEOUT, lambda: f"gunicorn to answer:\n{self.text()}",
                       step=0.1, retry_on=(OSError,))  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.text()}")
        get(self.base, "/check", timeout=BOOT_TIMEOUT)
        return True

    def probes(self, timeout: float = BOOT_TIMEOUT) -> dict[int, dict[str, Any]]:
        """The latest ``/check`` body of every worker (sweeps until ``workers`` pids answered).

        A worker still booting (a replacement, or a slow first policy load) is waited for;
        a worker that never answers fails the test, naming the pids that did.
        """
        seen: dict[int, dict[str, Any]] = {}

        def everyone() -> bool:
            seen.update({answer.pid: answer.body for answer in sweep(self.base)})
            return len(seen) >= self.workers

        wait_until(everyone, timeout, lambda: f"{self.workers} workers to answer /check "
                   f"(answered: {sorted(seen)})\n{self.text()}", step=0)  # fmt: skip
        return seen

    def all_workers(self, timeout: float = BOOT_TIMEOUT) -> dict[int, dict[str, bool]]:
        """A ``/check`` answer from every worker: which users hold ``employee`` in each."""
        return {pid: body["employee"] for pid, body in self.probes(timeout).items()}

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def signal_master(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    def stop(self) -> None:
        # Killed, not shut down gracefully: a graceful stop costs 1.5-2.5 s per server and
        # nothing here depends on it (the test's database is dropped WITH (FORCE) anyway).
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(BOOT_TIMEOUT)


@contextmanager
def gunicorn(env: dict[str, str], log: Path, workers: int = 3,
             preload: bool = True) -> Iterator[Gunicorn]:  # fmt: skip
    server = Gunicorn(env, log, workers, preload)
    try:
        yield server
    finally:
        server.stop()


def flask_guard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``flask --app APP guard ARGS`` in a new process, as an operator would run it."""
    command = [sys.executable, "-m", "flask", "--app", APP, "guard", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
