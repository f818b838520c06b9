"""A watcher that only reads the store's version: needs nothing but the store itself."""

from __future__ import annotations

from .base import DEFAULT_INTERVAL, LOGGER, VersionReader
from .thread import ThreadWatcher


class PollWatcher(ThreadWatcher):
    """Reads the version every ``interval`` seconds and reports each change (``poll:2s``).

    Works with any store and any number of hosts, at the cost of up to ``interval`` seconds of
    staleness and one small query per interval and process.
    """

    kind = "poll"

    def __init__(self, *, version: VersionReader, interval: float = DEFAULT_INTERVAL) -> None:
        super().__init__(version=version, interval=interval)
        self.description = f"poll:{self.interval:g}s"

    def _publish(self, payload: str) -> None:
        # Nothing to send: the other processes see the new version at their next read.
        LOGGER.debug("watcher %s: version %s left to the version reads", self.description, payload)
