"""Redis pub/sub: reaches every process subscribed to the channel on the same server."""

from __future__ import annotations

import contextlib
import re
from time import monotonic
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.client import PubSub
from redis.retry import Retry

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

_DB_PATH = re.compile(r"/?(\d+)?")
_NAME_UNSAFE = re.compile(r"[^\w.:-]")
#: seconds to wait for the server to confirm the subscription
SUBSCRIBE_TIMEOUT = 5.0
#: payloads taken at once before the loop looks at its stop flag again
BATCH = 100


class RedisWatcher(ThreadWatcher):
    """``SUBSCRIBE`` on a dedicated connection; ``PUBLISH`` from a small connection pool.

    The listener's connection is named ``casbin_guard:<channel>`` (``CLIENT LIST``). redis-py's
    own retries are turned off: the watcher reconnects itself, with backoff, and logs each
    outage once, instead of redis-py hiding a break during which notifications were lost.

    :param url: ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``), optionally
        ``?channel=name``.
    :param channel: overrides the URL's channel.
    :raises ConfigurationError: malformed URL or channel (the message masks the password).
    """

    kind = "redis"
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
        self._url, named = split_channel(url)
        self.channel = next(c for c in (channel, named, DEFAULT_CHANNEL) if c is not None)
        if not isinstance(self.channel, str) or not self.channel or len(self.channel) > 256:
            raise ConfigurationError(
                f"GUARD_WATCHER {mask(url)!r}: the channel must be 1 to 256 characters"
            )
        problem = _check_url(self._url)
        if problem is None:
            try:
                # Parses the URL (port, options) without connecting.
                self._publisher = _client(self._url, socket_timeout=2.0, name="casbin_guard_notify")
            except (ValueError, TypeError) as error:
                problem = self._describe(error)
        if problem is not None:
            raise ConfigurationError(
                f"GUARD_WATCHER {mask(url)!r} is not a valid Redis URL: {problem}"
            )
        self.description = f"{mask(self._url, self._secrets)} channel {self.channel!r}"

    def _listener(self) -> Listener:
        name = "casbin_guard:" + _NAME_UNSAFE.sub("_", self.channel)[:64]
        return _RedisListener(self._url, self.channel, name)

    def _publish(self, payload: str) -> None:
        self._publisher.publish(self.channel, payload)

    def _release(self) -> None:
        # The pool reconnects on the next publish, so notify() keeps working after stop().
        with contextlib.suppress(Exception):
            self._publisher.connection_pool.disconnect()

    def _describe(self, error: BaseException) -> str:
        return describe(error, self._secrets)


def _check_url(url: str) -> str | None:
    # redis-py quietly uses db 0 for a path it cannot read (redis://host/abc): refuse it.
    path = url.split("://", 1)[1].partition("?")[0]
    slash = path.find("/")
    if slash >= 0 and not _DB_PATH.fullmatch(path[slash:]):
        return "the path must be a database number (redis://host:6379/0)"
    return None


def _client(url: str, *, socket_timeout: float | None, name: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=3.0,
        socket_timeout=socket_timeout,
        socket_keepalive=True,
        # A PING every 30 s on the subscribed connection finds a silently dropped one.
        health_check_interval=30,
        client_name=name,
    )


class _RedisListener(Listener):
    def __init__(self, url: str, channel: str, name: str) -> None:
        self._url, self._channel, self._name = url, channel, name
        self._client: redis.Redis | None = None
        self._pubsub: PubSub | None = None

    def open(self) -> None:
        self._client = _client(self._url, socket_timeout=None, name=self._name)
        # pubsub() is unannotated in some redis-py releases and typed in others: go through Any.
        self._pubsub = cast(PubSub, cast(Any, self._client).pubsub())
        self._pubsub.subscribe(self._channel)
        # SUBSCRIBE is only in force once confirmed: until then a PUBLISH could be missed.
        deadline = monotonic() + SUBSCRIBE_TIMEOUT
        while (left := deadline - monotonic()) > 0:
            message = self._pubsub.get_message(timeout=left)
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError(f"no confirmation of SUBSCRIBE within {SUBSCRIBE_TIMEOUT:g} s")

    def receive(self, timeout: float) -> list[str]:
        if self._pubsub is None:
            raise redis.ConnectionError("the listener is not connected")
        payloads: list[str] = []
        message = self._pubsub.get_message(timeout=timeout)
        while message is not None:
            if message["type"] == "message":
                payloads.append(_text(message["data"]))
            if len(payloads) >= BATCH:
                break
            message = self._pubsub.get_message(timeout=0.0)
        return payloads

    def close(self) -> None:
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        with contextlib.suppress(Exception):  # a broken connection may fail to close
            if pubsub is not None:
                pubsub.close()
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()


def _text(data: Any) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
