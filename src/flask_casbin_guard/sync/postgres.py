"""PostgreSQL ``LISTEN``/``NOTIFY``: reaches every process connected to the same server."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import ConfigurationError
from .base import (
    DEFAULT_CHANNEL,
    DEFAULT_INTERVAL,
    VersionReader,
    describe,
    mask,
    split_channel,
    url_secrets,
)
from .thread import Listener, ThreadWatcher

# An unquoted-style identifier of at most NAMEDATALEN - 1 bytes: longer names are truncated by
# the server, so LISTEN and pg_notify would silently disagree.
_CHANNEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: connection options used unless the URL sets them. Keepalives make a silently dropped
#: connection (a network cut, not a server restart) fail within ~25 s instead of hours.
LISTEN_OPTIONS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "application_name": "casbin_guard_watcher",
}
#: the writer waits for notify(): fail fast rather than hold up the request that wrote
NOTIFY_OPTIONS = {"connect_timeout": "2", "application_name": "casbin_guard_notify"}


class PostgresWatcher(ThreadWatcher):
    """``LISTEN`` on a dedicated autocommit connection; ``pg_notify`` on a short-lived one.

    A short-lived connection per :meth:`notify` costs a few milliseconds per policy write, and
    in exchange holds no connection that a fork could share between two processes.

    :param url: ``postgresql://…`` or ``postgresql+psycopg://…``, optionally ``?channel=name``.
    :param channel: overrides the URL's channel; an identifier (letters, digits, ``_``).
    :raises ConfigurationError: malformed URL or channel (the message masks the password).
    """

    kind = "postgres"
    pushes = True

    def __init__(
        self,
        url: str,
        *,
        version: VersionReader,
        interval: float = DEFAULT_INTERVAL,
        channel: str | None = None,
    ) -> None:
        super().__init__(version=version, interval=interval)
        self._secrets = url_secrets(url)
        conninfo, named = split_channel(url)
        scheme, _, rest = conninfo.partition(":")
        if scheme.lower() == "postgresql+psycopg":
            conninfo = "postgresql:" + rest  # libpq knows no SQLAlchemy driver suffix
        self.channel = next(c for c in (channel, named, DEFAULT_CHANNEL) if c is not None)
        if not isinstance(self.channel, str) or not _CHANNEL.fullmatch(self.channel):
            raise ConfigurationError(
                f"GUARD_WATCHER {mask(url)!r}: channel {self.channel!r} must be an identifier "
                "(a letter or _, then letters, digits or _; at most 63)"
            )
        try:
            given = conninfo_to_dict(conninfo)
        except psycopg.Error as error:
            raise ConfigurationError(
                f"GUARD_WATCHER {mask(url)!r} is not a valid PostgreSQL URL: "
                f"{self._describe(error)}"
            ) from None
        # libpq checks the port only when connecting, on the watcher's thread: check it now.
        if not all(port.isdigit() for port in str(given.get("port", "0")).split(",") if port):
            raise ConfigurationError(
                f"GUARD_WATCHER {mask(url)!r} is not a valid PostgreSQL URL: the port must be "
                "a number"
            )
        # The URL's own options win over these defaults.
        listen = {k: v for k, v in LISTEN_OPTIONS.items() if k not in given}
        notify = {k: v for k, v in NOTIFY_OPTIONS.items() if k not in given}
        self._listen_conninfo = make_conninfo(conninfo, **listen)
        self._notify_conninfo = make_conninfo(conninfo, **notify)
        self.description = f"{mask(conninfo, self._secrets)} channel {self.channel!r}"

    def _listener(self) -> Listener:
        return _PostgresListener(self._listen_conninfo, self.channel)

    def _publish(self, payload: str) -> None:
        with psycopg.connect(self._notify_conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))

    def _describe(self, error: BaseException) -> str:
        return describe(error, self._secrets)


class _PostgresListener(Listener):
    def __init__(self, conninfo: str, channel: str) -> None:
        self._conninfo, self._channel = conninfo, channel
        self._conn: psycopg.Connection[Any] | None = None

    def open(self) -> None:
        # Autocommit: LISTEN takes effect at once, and notifications are delivered only between
        # transactions, so an idle-in-transaction listener would never receive them.
        self._conn = psycopg.connect(self._conninfo, autocommit=True)
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))

    def receive(self, timeout: float) -> list[str]:
        if self._conn is None:
            raise psycopg.OperationalError("the listener is not connected")
        # stop_after=1 returns on the first notification instead of waiting out the timeout;
        # several that arrived in the same packet still come together.
        return [notify.payload for notify in self._conn.notifies(timeout=timeout, stop_after=1)]

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                conn.close()
