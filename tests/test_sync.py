"""Watchers on the real local PostgreSQL and Redis servers, in threads and in other processes.

Tests needing a server skip when it is absent, unless GUARD_REQUIRE_SERVICES=1. Each test gets
its own PostgreSQL database (NOTIFY is scoped to one database) or its own Redis channel, and
only ever disconnects its own listener: the shared servers are never stopped.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from conftest import require_service
from flask_casbin_guard.errors import ConfigurationError
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.database import DatabaseStore
from flask_casbin_guard.sync import DEFAULT_INTERVAL, PollWatcher, Watcher, make_watcher
from flask_casbin_guard.sync.postgres import PostgresWatcher
from flask_casbin_guard.sync.redis import RedisWatcher
from flask_casbin_guard.sync.thread import ThreadWatcher
from helpers import wait_until

REDIS_URL = os.environ.get("GUARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
SECRET = "Pa55-w0rd-s3cret"
LOGGER = "flask_casbin_guard.sync"
#: long enough that only a notification, never the version read, can explain a delivery
NO_POLL = 60.0
#: bound of every wait for a delivery or a state: far above what it takes on a loaded 2-core
#: machine, below NO_POLL (a delivery within it cannot be the version read's)
WAIT = 30.0


class Recorder:
    """An ``on_change`` that remembers each call, its time and thread; can fail on demand."""

    def __init__(self, fail: Callable[[int | None], bool] = lambda version: False) -> None:
        self.calls: list[tuple[int | None, float, str]] = []
        self.fail = fail
        self.overlaps = 0
        self._inside = 0
        self._changed = threading.Condition()

    def __call__(self, version: int | None) -> None:
        self._inside += 1
        self.overlaps += self._inside > 1
        time.sleep(0.001)  # widen the window in which two threads could overlap
        self._inside -= 1
        with self._changed:
            self.calls.append((version, time.perf_counter(), threading.current_thread().name))
            self._changed.notify_all()
        if self.fail(version):
            raise RuntimeError(f"reload failed, password={SECRET}")

    @property
    def versions(self) -> list[int | None]:
        return [call[0] for call in self.calls]

    def wait_for(self, version: int | None, timeout: float = WAIT) -> float:
        """The perf_counter time of the first call with ``version``; fails after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: version in self.versions, timeout)
            for seen, at, _ in self.calls:
                if seen == version:
                    return at
        pytest.fail(f"on_change({version!r}) not called within {timeout} s: {self.versions}")


@pytest.fixture
def watchers() -> Iterator[Callable[..., Watcher]]:
    """``make_watcher`` whose watchers are all stopped after the test."""
    made: list[Watcher] = []

    def make(spec: str, version: Callable[[], int] = lambda: 0, **kwargs: float) -> Watcher:
        watcher = make_watcher(spec, version=version, **kwargs)
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.stop()


@pytest.fixture
def redis_url() -> str:
    """The test Redis server with a channel of this test's own."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        require_service(f"Redis at {REDIS_URL}", error)
    finally:
        client.close()
    return f"{REDIS_URL}?channel=guard_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["postgres", "redis"])
def push_url(request: pytest.FixtureRequest) -> str:
    """A watcher URL of each push transport, isolated from every other test."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(request.getfixturevalue("redis_url"))


def started(watcher: Watcher, recorder: Recorder) -> Watcher:
    """Start ``watcher`` and wait until it listens and has reported its first version."""
    watcher.start(recorder)
    wait_until(lambda: watcher.healthy and recorder.calls, WAIT,
               lambda: f"{watcher!r} healthy and its first version reported: {recorder.versions}",
               step=0.01)  # fmt: skip
    return watcher


def sync_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


def break_listener(url: str) -> None:
    """Disconnect this test's listener server-side, as a restart or network cut would."""
    if url.startswith("redis"):
        import redis

        channel = url.rpartition("channel=")[2]
        with redis.Redis.from_url(REDIS_URL) as client:
            ids = [
                c["id"]
                for c in client.client_list(_type="pubsub")
                if c["name"] == f"casbin_guard:{channel}"
            ]
            assert len(ids) == 1, ids
            assert client.client_kill_filter(_id=ids[0]) == 1
    else:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            ).fetchall()
            assert killed == [(True,)]


# -- the factory ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "interval", "channel"),
    [
        ("poll:2s", PollWatcher, 2.0, None),
        ("poll:500ms", PollWatcher, 0.5, None),
        ("POLL:0.25s", PollWatcher, 0.25, None),
        ("poll", PollWatcher, DEFAULT_INTERVAL, None),
        (f"postgresql://app:{SECRET}@db.example/policy", PostgresWatcher, 5.0, "casbin_guard"),
        (
            f"postgresql+psycopg://app:{SECRET}@db/p?channel=Guard_2",
            PostgresWatcher,
            5.0,
            "Guard_2",
        ),
        (f"redis://:{SECRET}@cache:6380/3", RedisWatcher, 5.0, "casbin_guard"),
        ("rediss://cache/0?channel=policy changes", RedisWatcher, 5.0, "policy changes"),
    ],
)
def test_specs_build_watchers_without_connecting(
    spec: str, kind: type[ThreadWatcher], interval: float, channel: str | None
) -> None:
    watcher = make_watcher(spec, version=lambda: 0)
    assert type(watcher) is kind
    assert watcher.interval == interval
    assert getattr(watcher, "channel", None) == channel
    assert SECRET not in repr(watcher) and SECRET not in watcher.description
    assert not watcher.healthy  # nothing runs before start()
    watcher.stop()  # and stopping a watcher never started is harmless


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "non-empty"),
        (f"mysql://app:{SECRET}@db/policy", "not a known watcher"),
        (f"postgresql+psycopg2://app:{SECRET}@db/policy", "not a known watcher"),
        (f"host=db password={SECRET}", "not a known watcher"),
        (f"redis://app:{SECRET}@cache:sixty/0", "not a valid Redis URL"),
        (f"redis://:{SECRET}@cache:6379/zero", "database number"),
        (f"redis://:{SECRET}@cache/0?channel=", "1 to 256 characters"),
        (f"redis://:{SECRET}@cache/0?channel=a&channel=b", "more than one channel"),
        (f"postgresql://app:{SECRET}@db/p?channel=bad-name", "must be an identifier"),
        (f"postgresql://app:{SECRET}@db/p?channel=", "must be an identifier"),
        (f"postgresql://app:{SECRET}@db:port/p", "port must be a number"),
        (f"postgresql://app:{SECRET}@db/p?no_such_option=1", "not a valid PostgreSQL URL"),
        (f"postgresql://app:{SECRET}@[::1/p", "not a valid URL"),
        ("poll:fast", "poll:2s or poll:500ms"),
        ("poll:5", "poll:2s or poll:500ms"),
        ("poll:-1s", "poll:2s or poll:500ms"),
        ("poll:0s", "from 0.01 to 86400"),
    ],
)
def test_malformed_specs_raise_without_the_password(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        make_watcher(spec, version=lambda: 0)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("interval", [0, -1, float("nan"), True, "5"])
def test_bad_intervals_raise(interval: object) -> None:
    with pytest.raises(ConfigurationError, match="interval"):
        # Values of the wrong type on purpose: what a hand-written config could hold.
        make_watcher("redis://cache/0", version=lambda: 0, interval=cast(Any, interval))


# -- the version read ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_version_read_alone_sees_a_store_write(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, watchers: Callable[..., Watcher]
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'policy.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = DatabaseStore(url, {"p": 3, "g": 2})
    reads = []

    def version() -> int:
        reads.append(store.version())
        return reads[-1]

    try:
        recorder = Recorder()
        started(watchers("poll:200ms", version), recorder)
        assert recorder.versions == [0]  # the first read always reports
        store.add([PolicyRow("p", ("alice", "data1", "read"))])
        committed = time.perf_counter()
        assert recorder.wait_for(1) - committed < 0.2 + 0.5
        # Two more reads of the same version (not a fixed sleep): neither reports it again.
        seen = len(reads)
        wait_until(lambda: len(reads) >= seen + 2, WAIT, f"2 version reads after {seen}")
        assert recorder.versions == [0, 1]
    finally:
        store.close()


def test_failing_version_reads_are_logged_once(
    caplog: pytest.LogCaptureFixture, watchers: Callable[..., Watcher]
) -> None:
    failures = iter(range(5))

    def version() -> int:
        if next(failures, None) is not None:
            raise OSError(f"database down (postgresql://app:{SECRET}@db/p)")
        return 3

    caplog.set_level(logging.INFO, LOGGER)
    recorder = Recorder()
    watcher = watchers("poll:20ms", version)
    watcher.start(recorder)
    recorder.wait_for(3)
    assert watcher.healthy
    [warning] = sync_records(caplog, logging.WARNING)
    assert "reading the policy version failed (OSError" in warning.getMessage()
    [info] = sync_records(caplog, logging.INFO)
    assert "works again" in info.getMessage()
    assert SECRET not in caplog.text


def test_a_failing_on_change_is_logged_and_retried_by_the_next_read(
    caplog: pytest.LogCaptureFixture, watchers: Callable[..., Watcher]
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    recorder = Recorder(fail=lambda version: len(recorder.calls) == 1)
    watcher = watchers("poll:20ms", lambda: 7)
    watcher.start(recorder)
    wait_until(lambda: len(recorder.calls) == 2, WAIT,
               lambda: f"the failed delivery retried: {recorder.versions}")  # fmt: skip
    assert recorder.versions == [7, 7]  # the failed delivery was retried, then not again
    [error] = sync_records(caplog, logging.ERROR)
    assert "on_change(7) raised RuntimeError" in error.getMessage()
    assert "test_sync.py" in error.getMessage()  # where it was raised
    assert SECRET not in caplog.text
    assert watcher.healthy


# -- notifications ---------------------------------------------------------------------------


def test_notifications_arrive_within_a_second(
    push_url: str, watchers: Callable[..., Watcher]
) -> None:
    recorder = Recorder()
    started(watchers(push_url, interval=NO_POLL), recorder)
    writer = watchers(push_url)
    delays = []
    for version in range(1, 11):
        sent = time.perf_counter()
        writer.notify(version)
        delays.append(recorder.wait_for(version) - sent)
    assert max(delays) < 1.0, delays
    assert recorder.versions == list(range(11))
    # every call from the watcher's one thread, never two at once
    assert isinstance(writer, ThreadWatcher)
    assert {name for _, _, name in recorder.calls} == {f"casbin-guard-{writer.kind}-watcher"}
    assert recorder.overlaps == 0


def test_a_payload_without_a_version_reports_none(
    redis_url: str, watchers: Callable[..., Watcher]
) -> None:
    import redis

    recorder = Recorder()
    watcher = started(watchers(redis_url, interval=NO_POLL), recorder)
    assert isinstance(watcher, RedisWatcher)
    with redis.Redis.from_url(REDIS_URL) as client:
        client.publish(watcher.channel, "reload please")
    recorder.wait_for(None)


def test_every_process_and_watcher_receives(
    push_url: str, watchers: Callable[..., Watcher]
) -> None:
    script = """
        import sys, time
        from flask_casbin_guard.sync import make_watcher

        watcher = make_watcher(sys.argv[1], version=lambda: 0, interval=60)
        watcher.start(lambda version: print("change", version, flush=True))
        deadline = time.monotonic() + 60  # fails below, naming what was seen, if it is stuck
        while not watcher.healthy and time.monotonic() < deadline:
            time.sleep(0.01)
        print("ready", watcher.healthy, flush=True)
        sys.stdin.read()  # until the test closes our stdin
        watcher.stop()
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), push_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    output = child.stdout
    assert output is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(output.readline, "")))
    reader.start()
    try:
        first, second = Recorder(), Recorder()
        started(watchers(push_url, interval=NO_POLL), first)
        started(watchers(push_url, interval=NO_POLL), second)
        wait_until(lambda: "ready True\n" in lines, WAIT * 2, lambda: f"the child ready: {lines}")
        watchers(push_url).notify(42)
        first.wait_for(42)
        second.wait_for(42)
        wait_until(lambda: "change 42\n" in lines, WAIT, lambda: f"the child's change: {lines}")
    finally:
        child.communicate(timeout=WAIT)
        reader.join()
    assert child.returncode == 0


@pytest.mark.parametrize("fail", ["first", "always"])
def test_a_failing_on_change_does_not_stop_notifications(
    push_url: str, fail: str, caplog: pytest.LogCaptureFixture, watchers: Callable[..., Watcher]
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    recorder = Recorder(fail=lambda version: fail == "always" or version == 1)
    watcher = watchers(push_url, interval=NO_POLL)
    started(watcher, recorder)
    writer = watchers(push_url)
    for version in (1, 2, 3):
        writer.notify(version)
        recorder.wait_for(version)
    expected = 4 if fail == "always" else 1  # with "always", the first read's call failed too
    # on_change records its call before raising: the log record follows a moment later
    wait_until(lambda: len(sync_records(caplog, logging.ERROR)) >= expected, WAIT,
               lambda: f"{expected} errors logged: {caplog.text}")  # fmt: skip
    # No other call was made (the next read is NO_POLL away), so no other error can follow.
    assert recorder.versions == [0, 1, 2, 3]
    errors = sync_records(caplog, logging.ERROR)
    assert len(errors) == expected
    assert watcher.healthy
    assert all("RuntimeError" in record.getMessage() for record in errors)
    assert SECRET not in caplog.text


# -- lifecycle -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["poll", "postgres", "redis"])
def test_stop_returns_promptly(
    kind: str, request: pytest.FixtureRequest, watchers: Callable[..., Watcher]
) -> None:
    spec = "poll:60s" if kind == "poll" else request.getfixturevalue(f"{kind}_url")
    watcher = started(watchers(spec, interval=NO_POLL), Recorder())
    assert isinstance(watcher, ThreadWatcher) and watcher._runner is not None
    thread = watcher._runner.thread
    began = time.perf_counter()
    watcher.stop()
    assert time.perf_counter() - began < 1.0
    assert not thread.is_alive()
    assert not watcher.healthy
    watcher.stop()  # twice is harmless


def test_start_is_idempotent_and_starts_afresh_after_fork(
    watchers: Callable[..., Watcher],
) -> None:
    first = Recorder()
    watcher = started(watchers("poll:50ms", lambda: 4), first)
    assert isinstance(watcher, ThreadWatcher)
    runner = watcher._runner
    assert runner is not None
    watcher.start(Recorder())
    assert watcher._runner is runner

    watcher._pid = -1  # as in a child forked after start()
    assert not watcher.healthy  # the parent's thread does not run in "this" process
    second = Recorder()
    try:
        started(watcher, second)
        assert watcher._runner is not runner
        assert second.versions == [4]
    finally:
        runner.stop_event.set()  # in a real fork this thread would not exist
        runner.thread.join(2)


def test_a_watcher_started_before_fork_restarts_in_the_child(push_url: str) -> None:
    script = """
        import os, sys, threading, time
        from flask_casbin_guard.sync import make_watcher

        def wait(condition):  # bounded: the output names what never came
            deadline = time.monotonic() + 60
            while not condition() and time.monotonic() < deadline:
                time.sleep(0.01)

        seen = []
        watcher = make_watcher(sys.argv[1], version=lambda: 0, interval=60)
        watcher.start(seen.append)  # wrongly, in the "master"
        wait(lambda: watcher.healthy)
        ready, go = os.pipe()
        pid = os.fork()
        if pid == 0:
            seen.clear()
            print("child healthy before start:", watcher.healthy, flush=True)
            watcher.start(seen.append)
            wait(lambda: watcher.healthy)
            os.write(go, b"x")
            wait(lambda: 42 in seen)
            print("child got", seen, flush=True)
            watcher.stop()
            os._exit(0)
        os.read(ready, 1)
        watcher.notify(42)
        wait(lambda: 42 in seen)
        print("parent got", seen, flush=True)
        os.waitpid(pid, 0)
        watcher.stop()
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), push_url],
        capture_output=True,
        text=True,
        timeout=4 * WAIT,
    )
    shown = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, shown
    assert "child healthy before start: False" in result.stdout, shown
    assert "child got [0, 42]" in result.stdout, shown
    # the child's fresh start did not close the parent's connection
    assert "parent got [0, 42]" in result.stdout, shown


# -- broken connections ----------------------------------------------------------------------


def test_a_broken_connection_is_restored_and_logged_once(
    push_url: str, caplog: pytest.LogCaptureFixture, watchers: Callable[..., Watcher]
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    recorder = Recorder()
    version = [0]
    watcher = started(watchers(push_url, lambda: version[0], interval=NO_POLL), recorder)
    version[0] = 1  # a write whose notification is lost: only a read can find it
    break_listener(push_url)
    wait_until(lambda: sync_records(caplog, logging.INFO) and watcher.healthy, WAIT,
               lambda: f"the connection restored: {caplog.text}")  # fmt: skip
    # a reconnection reads the version at once rather than after the 60 s interval
    recorder.wait_for(1)
    sent = time.perf_counter()
    watchers(push_url).notify(5)
    assert recorder.wait_for(5) - sent < 1.0
    [warning] = sync_records(caplog, logging.WARNING)
    assert "the connection failed" in warning.getMessage()
    [info] = sync_records(caplog, logging.INFO)
    assert "the connection works again" in info.getMessage()
    assert recorder.versions == [0, 1, 5]


@pytest.mark.parametrize(
    "spec",
    [f"redis://:{SECRET}@127.0.0.1:1/0", f"postgresql://app:{SECRET}@127.0.0.1:1/policy"],
    ids=["redis", "postgres"],
)
def test_an_unreachable_server_is_retried_while_versions_are_read(
    spec: str, caplog: pytest.LogCaptureFixture, watchers: Callable[..., Watcher]
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    version = [1]
    recorder = Recorder()
    watcher = watchers(spec, lambda: version[0], interval=0.05)
    watcher.start(recorder)
    recorder.wait_for(1)
    version[0] = 2
    recorder.wait_for(2)  # versions are read every 0.05 s meanwhile
    wait_until(lambda: "failed again" in caplog.text, WAIT,  # retried with backoff
               lambda: f"a second connection failure: {caplog.text}")  # fmt: skip
    assert not watcher.healthy
    watcher.notify(3)  # logs, never raises
    warnings = [r.getMessage() for r in sync_records(caplog, logging.WARNING)]
    assert len(warnings) == 2, warnings
    assert "the connection failed" in warnings[0]
    assert "cannot publish version 3" in warnings[1]
    assert SECRET not in caplog.text


def test_the_request_that_loads_the_policy_starts_the_watcher(tmp_path: Path) -> None:
    """A process whose first request loads the policy listens from that request on.

    Before the fix the watcher started at the process's second request: a gunicorn worker that
    had served one request heard of no change until its next request, which was then decided on
    the policy of the first one, however old.
    """
    from flask_casbin_guard import Flask
    from flask_casbin_guard.pipeline import STATE_KEY

    url = f"sqlite:///{tmp_path / 'policy.db'}"

    def app() -> Flask:
        made = Flask(__name__)
        made.config.update(
            GUARD_POLICY=url, GUARD_WATCHER="poll", GUARD_WATCHER_INTERVAL=0.05,
            GUARD_AUTH=["remote_user"], GUARD_TRUSTED_PROXIES=["127.0.0.1"],
        )  # fmt: skip
        made.get("/open", authorize="OPEN")(lambda: "open")
        return made

    served, writer = app(), app()
    try:
        assert served.test_client().get("/open").status_code == 200  # its one request
        with writer.app_context():
            assert writer.guard.policies.add_role("alice", "employee")

        def sees_alice() -> bool:
            with served.app_context():
                return served.guard.has_role("alice", "employee")

        wait_until(sees_alice, WAIT, "the served app to hear of alice's role with no request")
    finally:
        watcher = getattr(served.extensions[STATE_KEY], "_watcher", None)
        if watcher is not None:
            watcher.stop()
