"""The watcher contract, and the factory that reads ``GUARD_WATCHER``.

A watcher tells every process sharing a policy store that the policy changed. The writer calls
:meth:`Watcher.notify` after each committed write; every process runs :meth:`Watcher.start` in
itself (in each gunicorn worker, after fork) and gets ``on_change(version)`` on a notification.
Every watcher also reads the store's version at a bounded interval, so a lost notification costs
at most one interval of staleness instead of staleness until the next write.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .poll import PollWatcher
    from .postgres import PostgresWatcher
    from .redis import RedisWatcher

#: every record of the package's watchers goes to this logger
LOGGER = logging.getLogger("flask_casbin_guard.sync")

#: seconds between two reads of the version: the longest a lost notification goes unnoticed
DEFAULT_INTERVAL = 5.0
#: the PostgreSQL / Redis channel used unless the URL says ``?channel=name``
DEFAULT_CHANNEL = "casbin_guard"

#: ``on_change(version)``: the version a notification carried, or ``None`` when it carried none
OnChange = Callable[[int | None], None]
#: reads the store's current version (``DatabaseStore.version``)
VersionReader = Callable[[], int]

# Polling faster than this only loads the database; slower than a day is surely a typo.
_MIN_INTERVAL, _MAX_INTERVAL = 0.01, 86400.0
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_REDIS_SCHEMES = ("redis", "rediss")
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*", re.IGNORECASE)
# ``scheme://user:password@``: greedy up to the last ``@``, so that a password holding an
# unescaped ``@`` is masked whole (masking too much is harmless, too little is not).
_URL_PASSWORD = re.compile(r"(://[^:/?#@\s]*:)\S*@")
_KEY_PASSWORD = re.compile(r"(password\s*=\s*)[^&\s]*", re.IGNORECASE)
_VERSION_PAYLOAD = re.compile(r"\s*-?\d{1,19}\s*")


class Watcher(ABC):
    """Change notification between the processes that share one policy store.

    A watcher object may be created anywhere (even in a pre-fork master); it does nothing until
    :meth:`start`, which runs its thread in the calling process only.
    """

    @abstractmethod
    def start(self, on_change: OnChange) -> None:
        """Start listening in this process; call ``on_change`` on every change seen.

        Idempotent: while running, a second call does nothing (the first ``on_change`` stays).
        Called in a process forked after an earlier start, it starts afresh in that process,
        because the parent's thread was not copied by the fork.

        ``on_change`` runs on the watcher's thread, never on two threads at once. It gets the
        version from a notification (``None`` if the payload held none) or from a version read
        that differs from the last one seen; the first read after start always reports, so a
        write between the caller's load and :meth:`start` is not missed. The consumer dedups
        by version. An exception it raises is logged and the watcher keeps running.
        """

    @abstractmethod
    def notify(self, version: int) -> None:
        """Tell every listening process that ``version`` was committed.

        Never raises: a failure is logged at WARNING, and the other processes still see the
        change at their next version read.
        """

    @abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close its connection, waiting at most ``timeout`` seconds."""

    @property
    @abstractmethod
    def healthy(self) -> bool:
        """Whether the thread runs in this process, its connection is up and its last
        version read succeeded."""


def make_watcher(
    spec: str, *, version: VersionReader, interval: float = DEFAULT_INTERVAL
) -> Watcher:
    """Build the watcher named by a ``GUARD_WATCHER`` value. Nothing is started or connected.

    - ``postgresql://…`` or ``postgresql+psycopg://…``: PostgreSQL ``LISTEN``/``NOTIFY``
      (needs psycopg 3);
    - ``redis://host:port/db`` (or ``rediss://``): Redis pub/sub (needs redis-py);
    - ``poll:2s``, ``poll:500ms`` (or ``poll``: every ``interval``): version reads only.

    PostgreSQL and Redis URLs take an optional ``?channel=name`` (default ``casbin_guard``).

    :param version: reads the store's version; called on the watcher's thread.
    :param interval: seconds between version reads for the PostgreSQL and Redis watchers.
    :raises ConfigurationError: unknown or malformed spec, bad interval, missing driver. The
        message never holds the URL's password.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"GUARD_WATCHER must be a non-empty string, not {spec!r}")
    interval = check_interval(interval, f"the watcher interval ({interval!r})")
    scheme, colon, rest = spec.strip().partition(":")
    scheme = scheme.lower()
    if scheme == "poll":
        return _poll_watcher(spec, rest if colon else None, version, interval)
    if colon and rest.startswith("//") and scheme in _POSTGRES_SCHEMES:
        return _postgres_watcher(spec.strip(), version, interval)
    if colon and rest.startswith("//") and scheme in _REDIS_SCHEMES:
        return _redis_watcher(spec.strip(), version, interval)
    raise ConfigurationError(
        f"GUARD_WATCHER {mask(spec)!r} is not a known watcher: use postgresql://…, "
        "postgresql+psycopg://…, redis://host:port/db, or poll:<interval> (poll:2s, poll:500ms)"
    )


def _poll_watcher(
    spec: str, duration: str | None, version: VersionReader, interval: float
) -> PollWatcher:
    from .poll import PollWatcher

    if duration is not None:
        match = _DURATION.fullmatch(duration)
        if match is None:
            raise ConfigurationError(
                f"GUARD_WATCHER {mask(spec)!r}: the poll interval must be a duration such as "
                "poll:2s or poll:500ms"
            )
        scale = 0.001 if match.group(2).lower() == "ms" else 1.0
        interval = check_interval(float(match.group(1)) * scale, f"GUARD_WATCHER {spec!r}")
    return PollWatcher(version=version, interval=interval)


def _postgres_watcher(spec: str, version: VersionReader, interval: float) -> PostgresWatcher:
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigurationError(
            f"GUARD_WATCHER {mask(spec)!r} needs psycopg 3: install flask-casbin-guard[postgres]"
        )
    from .postgres import PostgresWatcher

    return PostgresWatcher(spec, version=version, interval=interval)


def _redis_watcher(spec: str, version: VersionReader, interval: float) -> RedisWatcher:
    if importlib.util.find_spec("redis") is None:
        raise ConfigurationError(
            f"GUARD_WATCHER {mask(spec)!r} needs redis-py: install flask-casbin-guard[redis]"
        )
    from .redis import RedisWatcher

    return RedisWatcher(spec, version=version, interval=interval)


def check_interval(value: object, what: str) -> float:
    """``value`` as seconds between version reads, or :class:`ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{what}: the interval must be a number of seconds")
    if not _MIN_INTERVAL <= value <= _MAX_INTERVAL:
        raise ConfigurationError(
            f"{what}: the interval must be from {_MIN_INTERVAL} to {_MAX_INTERVAL:.0f} seconds"
        )
    return float(value)


def split_channel(url: str) -> tuple[str, str | None]:
    """The URL without its ``channel`` query parameter, and that parameter (or ``None``).

    The drivers reject query parameters they do not know, so the channel is taken out first.
    """
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ConfigurationError(
            f"GUARD_WATCHER {mask(url)!r} is not a valid URL: {error}"
        ) from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    channels = [value for key, value in query if key == "channel"]
    if len(channels) > 1:
        raise ConfigurationError(f"GUARD_WATCHER {mask(url)!r} names more than one channel")
    rest = urlencode([(key, value) for key, value in query if key != "channel"])
    return urlunsplit(parts._replace(query=rest)), channels[0] if channels else None


def url_secrets(url: str) -> tuple[str, ...]:
    """The URL's password, raw and decoded, to mask in driver messages that might echo it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    return (password, unquote(password)) if password else ()


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords, ``password=`` values and each of ``secrets`` replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def describe(error: BaseException, secrets: Iterable[str] = ()) -> str:
    """One masked line about ``error`` for a log record: its type and its message's first line."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {mask(lines[0], secrets)}" if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def origin(error: BaseException) -> str:
    """Where ``error`` was raised (``file.py:12 in load``): locates it without its message."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


def parse_payload(payload: str) -> int | None:
    """The version a notification carries, or ``None`` for any other payload."""
    return int(payload) if _VERSION_PAYLOAD.fullmatch(payload) else None
