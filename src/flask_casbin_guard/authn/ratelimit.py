"""Failed-authentication limits that cannot be turned against users (the ``limits`` library).

Failures are counted three ways (ASVS 5.0 6.3.1: stop brute force and credential stuffing
without letting anyone lock an account out):

- per login *from one client* (the pair): ``GUARD_AUTH_RATE_LIMIT``, answered 429 when reached.
  Someone guessing alice's password from one place is stopped there, and only there: alice,
  elsewhere, still logs in.
- per client: ``GUARD_AUTH_IP_RATE_LIMIT``, answered 429, whatever logins it tries.
- per login from every client: ``GUARD_AUTH_LOGIN_CEILING``. Reaching it blocks nobody; it slows
  the login down: from then on each client may fail that login only
  ``GUARD_AUTH_SLOW_RATE_LIMIT`` times (one per minute by default). A client that has not failed
  lately, the owner typing the right password among them, passes at once.

A client is an IPv4 address or an IPv6 /64: one host often holds a whole /64.

Checking and counting are one step: each check reserves its attempt in a count of attempts in
flight (an atomic increment in the storage, Redis included) until its outcome is known, and
a limit refuses once failures plus attempts in flight would pass it. So N concurrent wrong
guesses get no more verifications than the limit allows, in one process or many.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import time
import unicodedata
from collections.abc import Callable, Iterator
from types import TracebackType

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..errors import ConfigurationError, PolicyUnavailable, TooManyAttempts

#: identifiers in the storage: (kind, id)
_Key = tuple[str, str]
#: the key whose attempts in flight count, and the (limit, key) tests they must pass
_Check = tuple[_Key, list[tuple[RateLimitItem, _Key]]]


def normalize_login(login: str) -> str:
    """The default of ``GUARD_NORMALIZE_LOGIN``: NFKC, then case folding.

    Failures are counted per normalized login, so a user lookup that ignores case (or
    compatibility forms: fullwidth letters) gives ``Alice`` and ``ALICE`` no fresh attempts once
    ``alice`` is limited. Used for counting only: the lookup still gets the login as typed.
    """
    return unicodedata.normalize("NFKC", login).casefold()


class FailureLimiter:
    """Counts failed authentications; refuses further attempts once a limit is reached.

    Only failures count (ASVS 4.0.3 2.2.1), so a user who types the right password is never
    throttled by their own successes. The same answer is given whether the login exists or not.

    :param per_login: limits per login from one client, such as ``"10 per minute; 100 per hour"``.
    :param per_address: limits per client (IPv4 address, IPv6 /64), whatever the login.
    :param storage: ``memory://`` (one process) or ``redis://host:port/db`` (shared).
    :param login_ceiling: failures of one login from every client past which it is slowed.
    :param slow: limits per login from one client once the login is past its ceiling.
    :param registrations: limits on registrations per client, counted whatever their outcome.
    :param normalize: maps a login to what its failures are counted under
        (``GUARD_NORMALIZE_LOGIN``; default :func:`normalize_login`).
    """

    def __init__(
        self,
        per_login: str,
        per_address: str,
        storage: str,
        *,
        login_ceiling: str = "",
        slow: str = "",
        registrations: str = "",
        normalize: Callable[[str], str] | None = None,
    ) -> None:
        self._normalize = normalize or normalize_login
        try:
            self._pair = _parse(per_login)
            self._address = _parse(per_address)
            self._ceiling = _parse(login_ceiling)
            self._slow = _parse(slow)
            self._registrations = _parse(registrations)
            found = storage_from_string(storage)
        except (ValueError, ConfigurationError) as error:
            raise ConfigurationError(f"invalid authentication rate limit: {error}") from None
        except Exception as error:  # storage drivers raise their own errors
            kind = type(error).__name__
            raise ConfigurationError(f"invalid rate-limit storage: {kind}") from None
        if not isinstance(found, Storage):  # "async+redis://": the checks here are synchronous
            raise ConfigurationError("rate-limit storage: an async+ scheme cannot serve here")
        self._storage = found
        self._window = MovingWindowRateLimiter(self._storage)
        self._pruned = time.monotonic()

    #: seconds between two sweeps of expired keys out of in-memory storage
    prune_interval = 60.0
    #: seconds an attempt in flight stays counted at most (a worker killed mid-check frees it)
    in_flight_expiry = 30
    #: seconds an attempt waits for those in flight before it is refused, and between looks
    in_flight_wait, in_flight_poll = 2.0, 0.02

    def attempt(self, login: str, address: str | None) -> Attempt:
        """Reserve one attempt for ``login`` from ``address``; use it as a context manager.

        Call :meth:`Attempt.failed` inside it when the credentials are wrong: leaving the block
        then counts the failure, and in every case frees the reservation. An attempt refused
        only for the attempts in flight waits for their outcome (up to :attr:`in_flight_wait`):
        a client sending many requests at once with the right password is not refused, since
        successes count nothing.

        :raises TooManyAttempts: over a limit, failures and attempts in flight together.
        """
        login = self.counted(login)
        deadline = time.monotonic() + self.in_flight_wait
        while True:
            with self.reachable():
                attempt = self._reserve(login, address)
            if attempt is not None:
                return attempt
            if time.monotonic() >= deadline:
                raise TooManyAttempts("authentication attempts in flight", retry_after=1)
            time.sleep(self.in_flight_poll)

    def _reserve(self, login: str, address: str | None) -> Attempt | None:
        """The reserved attempt; ``None`` when only attempts in flight stand in the way."""
        held: list[_Key] = []
        try:
            for counted, tests in self._checks(login, address):
                if not tests:
                    continue
                in_flight = self._in_flight(counted, +1)
                held.append(counted)
                for limit, key in tests:
                    if not self._window.test(limit, *key):
                        raise TooManyAttempts(
                            f"authentication rate limit reached for {key[0]}",
                            retry_after=self._retry_after(limit, key),
                        )
                    # in_flight counts this attempt and those not decided yet, here or elsewhere
                    if not self._window.test(limit, *key, cost=max(1, in_flight)):
                        self._release(held)
                        return None
        except BaseException:
            self._release(held)
            raise
        return Attempt(self, login, address, held)

    def counted(self, login: str) -> str:
        """What failures of ``login`` are counted under (its normalized form)."""
        try:
            counted = self._normalize(login)
        except Exception as error:  # the app's callable: a bug there must not pass as a login
            raise ConfigurationError(
                f"GUARD_NORMALIZE_LOGIN failed: {type(error).__name__}"
            ) from None
        if not isinstance(counted, str):
            raise ConfigurationError("GUARD_NORMALIZE_LOGIN must return a string")
        return counted

    def _release(self, held: list[_Key]) -> None:
        while held:
            self._in_flight(held.pop(), -1)

    def check(self, login: str, address: str | None) -> None:
        """Raise :class:`TooManyAttempts` when an attempt would be refused now (no reservation)."""
        with self.attempt(login, address):
            pass

    def failed(self, login: str, address: str | None) -> None:
        """Count one failed authentication of ``login`` (normalized) from ``address``."""
        self._count_failure(self.counted(login), address)

    def _count_failure(self, login: str, address: str | None) -> None:
        pair, client, login_key = _identifiers(login, address)
        hits = [(self._pair, pair), (self._slow, _slow(pair)), (self._ceiling, login_key)]
        if client is not None:
            hits.append((self._address, client))
        with self.reachable():
            for limits, key in hits:
                for limit in limits:
                    self._window.hit(limit, *key)
        now = time.monotonic()
        if isinstance(self._storage, MemoryStorage) and now - self._pruned >= self.prune_interval:
            self._pruned = now
            _prune(self._storage)

    def registration(self, address: str | None) -> None:
        """Count one registration request from ``address``.

        Every request counts, not only failures: whether one "failed" (a login taken) is
        exactly what the answer must not tell.

        :raises TooManyAttempts: past the registration limits of this client.
        """
        key = ("register", client_of(address) or "-")
        with self.reachable():
            for limit in self._registrations:
                if not self._window.hit(limit, *key):  # test and count in one atomic step
                    raise TooManyAttempts(
                        "registration rate limit reached", retry_after=self._retry_after(limit, key)
                    )

    @contextlib.contextmanager
    def reachable(self) -> Iterator[None]:
        """A storage that cannot be reached (Redis down) is a 503, never a 500 nor a pass.

        Failing open would lift every limit while the storage is away: the one moment an
        attacker can choose.
        """
        try:
            yield
        except self._storage.base_exceptions as error:
            raise PolicyUnavailable(f"rate-limit storage: {type(error).__name__}") from None

    def _checks(self, login: str, address: str | None) -> list[_Check]:
        pair, client, login_key = _identifiers(login, address)
        pair_tests = [(limit, pair) for limit in self._pair]
        if any(not self._window.test(limit, *login_key) for limit in self._ceiling):
            # Past its ceiling the login is slowed, never closed: the slow limits count only
            # this client's own failures, so the owner elsewhere passes while guessers wait.
            pair_tests += [(limit, _slow(pair)) for limit in self._slow]
        checks: list[_Check] = [(pair, pair_tests)]
        if client is not None:
            checks.append((client, [(limit, client) for limit in self._address]))
        return checks

    def _in_flight(self, key: _Key, change: int) -> int:
        # A plain counter (incr is atomic in every limits storage); the moving windows above
        # hold failures only, and an entry cannot be taken back out of them.
        name = "guard-in-flight/" + "/".join(key)
        return self._storage.incr(name, self.in_flight_expiry, change)

    def _retry_after(self, limit: RateLimitItem, key: _Key) -> int:
        reset = self._window.get_window_stats(limit, *key).reset_time
        return max(1, int(reset - time.time()) + 1)


class Attempt:
    """One reserved authentication attempt (see :meth:`FailureLimiter.attempt`)."""

    def __init__(
        self,
        limiter: FailureLimiter,
        login: str,
        address: str | None,
        held: list[_Key],
    ) -> None:
        self._limiter = limiter
        #: the normalized login, as counted
        self._login, self._address = login, address
        self._held = held
        self._failed = False

    def failed(self) -> None:
        """The credentials were wrong: count a failure when the attempt ends."""
        self._failed = True

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._limiter.reachable():
            try:
                if self._failed:
                    # Counted before the reservation is freed: a concurrent check sees one or
                    # the other, never neither.
                    self._limiter._count_failure(self._login, self._address)
            finally:
                self._limiter._release(self._held)


def client_of(address: str | None) -> str | None:
    """What failures of ``address`` are counted by: an IPv4 address or an IPv6 /64.

    A host (or a home router's customer) usually gets a whole /64: counting single IPv6
    addresses would give one attacker 2**64 fresh counters. An IPv4-mapped IPv6 address counts
    as its IPv4 address.
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:128]  # a Unix socket, a proxy's own notation: counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def _identifiers(login: str, address: str | None) -> tuple[_Key, _Key | None, _Key]:
    """(pair, client, login) identifiers in the storage."""
    # Logins are hashed: the storage (Redis) never holds what users typed as their name.
    digest = hashlib.sha256(login.encode("utf-8", "replace")).hexdigest()
    client = client_of(address)
    pair = ("login", f"{digest}@{client or '-'}")
    return pair, (("address", client) if client else None), ("ceiling", digest)


def _slow(pair: _Key) -> _Key:
    # Apart from the pair's own: "1 per minute" in both lists must not be one window hit twice.
    return ("slow", pair[1])


def _parse(text: str) -> list[RateLimitItem]:
    return parse_many(text) if text else []


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
