"""Failed-authentication limits per login and per client address (the ``limits`` library)."""

from __future__ import annotations

import hashlib
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..errors import ConfigurationError, TooManyAttempts


class FailureLimiter:
    """Counts failed authentications; refuses further attempts once a limit is reached.

    Only failures count (ASVS 2.2.1: at most 100 failed attempts per hour per account), so a user
    who types the right password is never throttled by their own successes. The same answer is
    given whether the login exists or not.

    :param per_login: limits such as ``"10 per minute; 100 per hour"``.
    :param per_address: the same, per client address.
    :param storage: ``memory://`` (one process) or ``redis://host:port/db`` (shared).
    """

    def __init__(self, per_login: str, per_address: str, storage: str) -> None:
        try:
            self._login: list[RateLimitItem] = parse_many(per_login) if per_login else []
            self._address: list[RateLimitItem] = parse_many(per_address) if per_address else []
            self._storage = storage_from_string(storage)
        except (ValueError, ConfigurationError) as error:
            raise ConfigurationError(f"invalid authentication rate limit: {error}") from None
        except Exception as error:  # storage drivers raise their own errors
            kind = type(error).__name__
            raise ConfigurationError(f"invalid rate-limit storage: {kind}") from None
        self._window = MovingWindowRateLimiter(self._storage)
        self._pruned = time.monotonic()

    #: seconds between two sweeps of expired keys out of in-memory storage
    prune_interval = 60.0

    def check(self, login: str, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` when the login or the address is over a limit."""
        for limits, key in self._keys(login, address):
            for limit in limits:
                if not self._window.test(limit, *key):
                    reset = self._window.get_window_stats(limit, *key).reset_time
                    raise TooManyAttempts(
                        f"authentication rate limit reached for {key[0]}",
                        retry_after=max(1, int(reset - time.time()) + 1),
                    )

    def failed(self, login: str, address: str | None) -> None:
        for limits, key in self._keys(login, address):
            for limit in limits:
                self._window.hit(limit, *key)
        now = time.monotonic()
        if isinstance(self._storage, MemoryStorage) and now - self._pruned >= self.prune_interval:
            self._pruned = now
            _prune(self._storage)

    def _keys(
        self, login: str, address: str | None
    ) -> list[tuple[list[RateLimitItem], tuple[str, str]]]:
        # Logins are hashed: the storage (Redis) never holds what users typed as their name.
        digest = hashlib.sha256(login.encode("utf-8", "replace")).hexdigest()
        keys = [(self._login, ("login", digest))]
        if address:
            keys.append((self._address, ("address", address)))
        return keys


def _prune(storage: MemoryStorage) -> None:
    """Drop the keys whose failures have all expired.

    limits' MemoryStorage empties the event list of an expired key but keeps the key (limits
    5.8): every login and address that ever failed would stay in memory for the life of the
    process, an unbounded growth anyone can drive with made-up logins.
    """
    for key, events in list(storage.events.items()):
        if not events:
            with storage.locks[key]:  # the lock acquire_entry holds while it appends
                if not storage.events.get(key, True):
                    del storage.events[key]
            storage.locks.pop(key, None)
