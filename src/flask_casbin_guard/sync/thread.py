"""The thread behind every watcher: receive notifications, read the version, reconnect.

One loop serves all transports. A transport only supplies a :class:`Listener` (one connection,
opened and used by the thread alone) and a way to publish. The loop owns everything that must
behave the same everywhere: the bounded version read, the reconnection backoff, the
log-once-per-outage rule, and keeping ``on_change`` failures from ending the thread.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from time import monotonic

from .base import (
    LOGGER,
    OnChange,
    VersionReader,
    Watcher,
    check_interval,
    describe,
    origin,
    parse_payload,
)

#: longest wait between two looks at the stop flag while connected: bounds stop()
TICK = 0.25
#: first wait before reconnecting, doubled after each failure up to BACKOFF_MAX
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
#: a connection that lived this long is stable: its loss restarts the backoff from the start
STABLE = 30.0

# Guards start/stop of every watcher. A lock copied by fork may be held by a parent thread that
# does not exist in the child, so the child gets a new one. Reentrant: creating a thread in
# start() may collect a discarded app's state, whose finalizer stops its watcher in the same
# thread, under this lock (a plain lock deadlocked there).
_START_LOCK = threading.RLock()


def _renew_start_lock() -> None:
    global _START_LOCK
    _START_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_renew_start_lock)


class Listener(ABC):
    """One connection receiving notifications; made fresh for each (re)connection."""

    @abstractmethod
    def open(self) -> None:
        """Connect and subscribe; raise on failure. On return, no notification is missed."""

    @abstractmethod
    def receive(self, timeout: float) -> list[str]:
        """The payloads received within ``timeout`` seconds, returning soon after the first.

        Raises when the connection is broken.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Never raises."""


class ThreadWatcher(Watcher):
    """A :class:`Watcher` whose work runs on a daemon thread of the process that started it.

    Subclasses give :meth:`_publish`; those that set :attr:`pushes` also give :meth:`_listener`.

    :param version: reads the store's version, on the watcher's thread.
    :param interval: seconds between two version reads.
    """

    #: short name of the transport, used in the thread name
    kind = "poll"
    #: whether notifications arrive through a :class:`Listener` (else: version reads only)
    pushes = False

    def __init__(self, *, version: VersionReader, interval: float) -> None:
        self.version = version
        #: seconds between two version reads
        self.interval = check_interval(interval, "the watcher interval")
        #: where the watcher listens, password masked; for log records and ``repr``
        self.description = self.kind
        self._runner: _Runner | None = None
        self._reset()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} every {self.interval:g}s>"

    def _reset(self) -> None:
        # Called at creation and in a forked child: the parent's runner did not survive the
        # fork (no thread is copied) and its lock may be held for ever.
        self._pid = os.getpid()
        self._callback_lock = threading.Lock()
        self._runner = None

    def start(self, on_change: OnChange) -> None:
        runner = self._runner
        if runner is not None and self._pid == os.getpid() and runner.thread.is_alive():
            return  # the common case, e.g. called on every request: no lock taken
        with _START_LOCK:
            if self._pid != os.getpid():
                self._reset()
            if self._runner is not None and self._runner.thread.is_alive():
                return
            runner = _Runner(self, on_change, self._callback_lock)
            self._runner = runner
            runner.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with _START_LOCK:
            runner, self._runner = self._runner, None
            if self._pid != os.getpid():
                return  # the parent's runner: nothing of it runs in this process
        self._release()
        if runner is None:
            return
        runner.stop_event.set()
        if runner.thread is threading.current_thread():
            return  # stop() from inside on_change: the loop ends when on_change returns
        runner.thread.join(timeout)
        if runner.thread.is_alive():
            LOGGER.warning(
                "watcher %s did not stop within %.1f s (on_change or the version read is "
                "still running); its daemon thread ends when they return",
                self.description,
                timeout,
            )

    def notify(self, version: int) -> None:
        try:
            self._publish(str(int(version)))
        except Exception as error:  # the writer's commit is done: its caller must not fail
            LOGGER.warning(
                "watcher %s cannot publish version %r (%s); other processes see the change "
                "at their next version read",
                self.description,
                version,
                self._describe(error),
            )

    @property
    def healthy(self) -> bool:
        runner = self._runner
        return (
            runner is not None
            and self._pid == os.getpid()
            and runner.thread.is_alive()
            and not runner.stop_event.is_set()
            and runner.healthy
        )

    def _listener(self) -> Listener:
        """A new, unopened listener (only called when :attr:`pushes` is true)."""
        raise NotImplementedError(f"{type(self).__name__} receives no notifications")

    def _release(self) -> None:
        """Close what :meth:`notify` keeps open; it must still work afterwards."""

    @abstractmethod
    def _publish(self, payload: str) -> None:
        """Send ``payload`` to every listener; may raise (:meth:`notify` logs it)."""

    def _describe(self, error: BaseException) -> str:
        """A log line about ``error``; subclasses add the secrets to mask."""
        return describe(error)


class _Outage:
    """One dependency that can fail: logged once when it breaks and once when it is back."""

    def __init__(self, watcher: ThreadWatcher, what: str, meanwhile: str) -> None:
        self.watcher, self.what, self.meanwhile = watcher, what, meanwhile
        self.since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self.since is None:
            self.since = monotonic()
            LOGGER.warning(
                "watcher %s: %s failed (%s); %s",
                self.watcher.description,
                self.what,
                self.watcher._describe(error),
                self.meanwhile,
            )
        else:
            LOGGER.debug("watcher %s: %s failed again", self.watcher.description, self.what)

    def recovered(self) -> None:
        if self.since is not None:
            LOGGER.info(
                "watcher %s: %s works again after %.1f s",
                self.watcher.description,
                self.what,
                monotonic() - self.since,
            )
            self.since = None


class _Runner:
    """One run of a watcher's thread: its stop flag, connection and last version seen.

    A runner is never reused, so a thread left over from an earlier run (a stop() that timed
    out, or a parent's runner in a forked child) cannot disturb the current one.
    """

    def __init__(
        self, watcher: ThreadWatcher, on_change: OnChange, callback_lock: threading.Lock
    ) -> None:
        self.watcher = watcher
        self.on_change = on_change
        self.callback_lock = callback_lock
        self.stop_event = threading.Event()
        self.listener: Listener | None = None
        self.pushes = watcher.pushes
        self.last_seen: int | None = None
        self.read_once = False
        every = f"{watcher.interval:g} s"
        self.link = _Outage(
            watcher, "the connection", f"reconnecting with backoff; versions are read every {every}"
        )
        self.reads = _Outage(watcher, "reading the policy version", f"retrying every {every}")
        self.bug = _Outage(watcher, "the watcher loop", "retrying in 1 s")
        self.thread = threading.Thread(
            target=self.run, name=f"casbin-guard-{watcher.kind}-watcher", daemon=True
        )

    @property
    def healthy(self) -> bool:
        connected = self.listener is not None or not self.pushes
        return connected and self.read_once and self.reads.since is None

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self._disconnect()

    def _loop(self) -> None:
        interval = self.watcher.interval
        next_read = next_connect = 0.0
        delay = BACKOFF_START
        connected_at = 0.0
        while not self.stop_event.is_set():
            try:
                now = monotonic()
                if self.pushes and self.listener is None and now >= next_connect:
                    if self._connect():
                        connected_at = now
                        next_read = now  # notifications sent while disconnected are lost
                    else:
                        next_connect, delay = now + delay, min(delay * 2, BACKOFF_MAX)
                if monotonic() >= next_read:
                    self._read_version()
                    next_read = monotonic() + interval
                wait = next_read - monotonic()
                if self.listener is not None:
                    if not self._receive(self.listener, max(min(wait, TICK), 0.0)):
                        now = monotonic()
                        if now - connected_at >= STABLE:
                            delay = BACKOFF_START
                        next_connect, delay = now + delay, min(delay * 2, BACKOFF_MAX)
                else:
                    if self.pushes:
                        wait = min(wait, next_connect - monotonic())
                    self.stop_event.wait(max(wait, 0.0))
                self.bug.recovered()
            except Exception as error:  # a bug of this module: keep the watcher alive anyway
                self.bug.failed(error)
                LOGGER.debug("watcher loop error at %s", origin(error))
                self.stop_event.wait(1.0)

    def _connect(self) -> bool:
        listener = self.watcher._listener()
        try:
            listener.open()
        except Exception as error:
            listener.close()
            self.link.failed(error)
            return False
        self.listener = listener
        self.link.recovered()
        return True

    def _disconnect(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()

    def _receive(self, listener: Listener, timeout: float) -> bool:
        """Deliver what arrives within ``timeout``; ``False`` when the connection broke."""
        try:
            payloads = listener.receive(timeout)
        except Exception as error:
            self._disconnect()
            self.link.failed(error)
            return False
        for payload in payloads:
            if self.stop_event.is_set():
                break
            self._deliver(parse_payload(payload))
        return True

    def _read_version(self) -> None:
        try:
            current = self.watcher.version()
        except Exception as error:  # the store's own error types are unknown here
            self.reads.failed(error)
            return
        self.reads.recovered()
        self.read_once = True
        if current != self.last_seen:
            self._deliver(current)

    def _deliver(self, version: int | None) -> None:
        with self.callback_lock:
            try:
                self.on_change(version)
            except Exception as error:
                # Only the type, a masked message and the place: the text of a foreign error
                # may hold anything. last_seen stays, so the next version read retries.
                LOGGER.error(
                    "watcher %s: on_change(%r) raised %s at %s; the watcher keeps running",
                    self.watcher.description,
                    version,
                    self.watcher._describe(error),
                    origin(error),
                )
                return
        if version is not None:
            self.last_seen = version
