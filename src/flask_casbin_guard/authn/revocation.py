"""What makes a once-valid credential invalid: logout, password change, disabled account.

Self-contained credentials (JWTs, signed session cookies) stay valid until they expire unless
the server keeps a list of the terminated ones and a per-user "issued before this is invalid"
stamp (ASVS 5.0 7.4.1). A :class:`Revocations` answers both, and whether an account is active.

Refresh tokens carry a family id (``fam``), shared by every token a refresh issues: using a
refresh token a second time revokes the whole family (OAuth 2.0 Security BCP, RFC 9700 §4.14),
since either the thief or the owner then holds tokens descended from a stolen one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any, Protocol

from ..errors import AuthenticationFailed, GuardError, PolicyUnavailable
from ..identity import Identity
from ..memo import BoundedMemo, weigh_arguments

log = logging.getLogger("flask_casbin_guard")

#: seconds between two purges of expired revocations, per process
PURGE_INTERVAL = 3600.0
#: seconds a revocation made in another process may go unseen here (at most)
REVOCATION_TTL = 1.0
#: token-id answers remembered per process, and the bytes they may hold
REVOCATION_CACHE_SIZE, REVOCATION_CACHE_BYTES = 65536, 16 << 20
#: seconds of expiry one bucket of :class:`MemoryRevocations` holds
_BUCKET = 60


def family_key(family: str) -> str:
    """The revocation id of a refresh token family (never a token's own ``jti``)."""
    return f"family:{family}"


class Revocations(Protocol):
    """Storage of revoked credential ids, per-user stamps and disabled accounts."""

    def is_revoked(self, *jtis: str) -> bool:
        """Whether any of these credential ids was revoked (may lag another process's
        revocation by a bounded time: see :class:`StoreRevocations`)."""
        ...

    def is_revoked_now(self, *jtis: str) -> bool:
        """:meth:`is_revoked`, asking the store itself (no lag), for rare and decisive checks."""
        ...

    def revoke(self, jti: str, expires_at: float) -> None: ...

    def claim(self, jti: str, expires_at: float) -> bool:
        """Revoke ``jti`` unless it already was: ``True`` for exactly one caller, atomically."""
        ...

    def revoke_user(self, login: str) -> None:
        """Void every credential ``login`` holds now (not later ones)."""
        ...

    def forget(self, login: str | None = None) -> None:
        """Drop remembered answers about ``login`` (or all) after a change made here."""
        ...

    def valid_after(self, login: str) -> float | None:
        """Credentials issued before this epoch time are invalid (``None``: unknown user)."""
        ...

    def is_active(self, login: str) -> bool | None:
        """``False`` for a disabled account, ``None`` for one the store does not know."""
        ...


class MemoryRevocations:
    """Revocations kept in this process only, for apps with neither sessions nor tokens
    (nothing of theirs needs revoking) and for tests. The guard never uses it for an app that
    has them: those keep revocations in a database, so they survive restarts and are shared by
    every process.

    Lookups and inserts are O(1); expired ids are dropped a minute's bucket at a time, each
    id once (a purge used to scan every id at each insert).
    """

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        #: ids by the minute they expire in; minutes before ``_swept`` are dropped
        self._buckets: defaultdict[int, list[str]] = defaultdict(list)
        self._swept = int(time.time() // _BUCKET)
        self._stamps: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_revoked(self, *jtis: str) -> bool:
        return any(jti in self._revoked for jti in jtis)

    is_revoked_now = is_revoked

    def revoke(self, jti: str, expires_at: float) -> None:
        with self._lock:
            self._purge()
            self._add(jti, max(expires_at, self._revoked.get(jti, expires_at)))

    def claim(self, jti: str, expires_at: float) -> bool:
        with self._lock:
            self._purge()
            if jti in self._revoked:
                return False
            self._add(jti, expires_at)
            return True

    def forget(self, login: str | None = None) -> None:
        return None  # nothing is remembered apart from what is stored here

    def _add(self, jti: str, expires_at: float) -> None:
        self._revoked[jti] = expires_at
        # Never behind the sweep: an id already expired goes in the next bucket swept.
        self._buckets[max(int(expires_at // _BUCKET), self._swept)].append(jti)

    def _purge(self) -> None:
        # Expired entries are useless: the credential is refused for its age anyway.
        now = time.time()
        current = int(now // _BUCKET)
        # After a long idle time, visit the buckets that exist rather than every minute.
        due: range | list[int] = range(self._swept, current)
        if len(due) > len(self._buckets):
            due = [minute for minute in self._buckets if minute < current]
        for minute in due:
            for jti in self._buckets.pop(minute, ()):
                if self._revoked.get(jti, now) < now:
                    del self._revoked[jti]
        self._swept = max(self._swept, current)

    def revoke_user(self, login: str) -> None:
        with self._lock:
            self._stamps[login] = time.time()

    def valid_after(self, login: str) -> float | None:
        return self._stamps.get(login)

    def is_active(self, login: str) -> bool | None:
        return None


def check_identity(identity: Identity, revocations: Revocations) -> Identity:
    """Refuse an identity whose credential was revoked or whose account is disabled.

    Identities without claims (passwords, API keys, a proxy's header) are only checked for a
    disabled account. A token (it has ``exp``) without a numeric ``iat`` cannot show it was
    issued after a revocation stamp, so it is refused once the user has one.
    """
    check_account(identity, revocations)
    claims = identity.claims
    ids = [claims.get("jti")]
    if isinstance(claims.get("fam"), str):
        ids.append(family_key(claims["fam"]))
    wanted = [value for value in ids if isinstance(value, str)]
    if wanted and revocations.is_revoked(*wanted):
        raise AuthenticationFailed(f"{identity.scheme}: credential revoked", login=identity.login)
    return identity


def check_account(identity: Identity, revocations: Revocations) -> Identity:
    """The account part of :func:`check_identity`: disabled accounts and per-user stamps."""
    login = identity.login
    if revocations.is_active(login) is False:
        raise AuthenticationFailed(f"{identity.scheme}: account disabled", login=login)
    claims = identity.claims
    issued = claims.get("iat")
    stamp = revocations.valid_after(login)
    is_token = "exp" in claims or issued is not None
    if stamp is not None and is_token and (not isinstance(issued, int | float) or issued < stamp):
        raise AuthenticationFailed(f"{identity.scheme}: credential issued before revocation")
    return identity


class StoreRevocations:
    """Revocations kept in a database: the user store's, shared by every process, or the
    app's own SQLite file when there is no policy database.

    Answers are remembered for ``ttl`` seconds, per login and per token id, so an
    authenticated request costs no query at all while its answers are fresh; a change made
    through this process clears them at once, and other processes see it within ``ttl``
    (the guard uses 1 s, or ``GUARD_WATCHER_INTERVAL`` when shorter). Single use of refresh
    tokens never relies on them: :meth:`claim` is one atomic write in the store.

    While the database is unreachable, a login answered before keeps its last answer (as the
    policy keeps its last good version), logged once per outage; anything this process cannot
    know (a login never seen, a token's ``jti``) is :class:`PolicyUnavailable` (503), never an
    allow and never a 500.

    :param store: a :class:`~flask_casbin_guard.store.users.UserStore`, or a
        :class:`~flask_casbin_guard.store.revoked.RevocationStore` when there is no user store.
    :param purge_every: seconds between two purges of expired revocations, done by a write.
    """

    def __init__(
        self, store: Any, ttl: float = REVOCATION_TTL, purge_every: float = PURGE_INTERVAL
    ) -> None:
        self._store = store
        self._ttl = ttl
        # Token ids come from verified credentials, but a session id or a jti may still be
        # long: bounded in bytes as well as in entries.
        self._jtis = BoundedMemo(
            self.is_revoked_now,
            REVOCATION_CACHE_SIZE,
            REVOCATION_CACHE_BYTES,
            weigh_arguments,
            ttl=ttl,
        )
        self._purge_every = purge_every
        self._purged_at: float | None = None
        self._users: dict[str, tuple[float, bool | None, float | None]] = {}
        self._lock = threading.Lock()
        self._down = False

    def is_revoked(self, *jtis: str) -> bool:
        return self._jtis(*jtis) if self._ttl > 0 else self.is_revoked_now(*jtis)

    def is_revoked_now(self, *jtis: str) -> bool:
        try:
            return bool(self._store.is_revoked(*jtis))
        except GuardError as error:
            raise PolicyUnavailable(f"cannot check the token's revocation: {error}") from None

    def revoke(self, jti: str, expires_at: float) -> None:
        try:
            self._store.revoke_jti(jti, expires_at)
        finally:
            self._jtis.cache_clear()  # this process sees its own revocation at once
        self._purge()

    def claim(self, jti: str, expires_at: float) -> bool:
        try:
            claimed = bool(self._store.claim(jti, expires_at))
        finally:
            self._jtis.cache_clear()
        self._purge()
        return claimed

    def revoke_user(self, login: str) -> None:
        # A stamp of the login, not of a guard_users row: it works for users of an external
        # store (GUARD_GET_USER_PASS) and an identity provider's logins too.
        self._store.revoke_login(login)
        self.forget(login)

    def _purge(self) -> None:
        """Forget expired revocations, at most once per ``purge_every`` in this process."""
        now = time.monotonic()
        if self._purged_at is not None and now - self._purged_at < self._purge_every:
            return
        self._purged_at = now
        try:
            self._store.purge_expired()
        except GuardError as error:  # the revocation itself is stored; a purge can wait
            log.warning("cannot purge expired revocations: %s", error)

    def valid_after(self, login: str) -> float | None:
        return self._user(login)[2]

    def is_active(self, login: str) -> bool | None:
        return self._user(login)[1]

    def forget(self, login: str | None = None) -> None:
        """Drop remembered answers (one login, or all) after a change made here."""
        with self._lock:
            if login is None:
                self._users.clear()
                self._jtis.cache_clear()
            else:
                self._users.pop(login, None)

    def _user(self, login: str) -> tuple[float, bool | None, float | None]:
        now = time.monotonic()
        found = self._users.get(login)
        if found is None or now - found[0] > self._ttl:
            try:
                active, stamp = self._store.account(login)
            except GuardError as error:
                if found is None:
                    raise PolicyUnavailable(f"cannot check the account: {error}") from None
                if not self._down:
                    log.warning("user store unreachable, using last known accounts: %s", error)
                    self._down = True
                found = (now, found[1], found[2])  # asked again after ttl, not per request
                with self._lock:
                    self._users[login] = found
                return found
            if self._down:
                self._down = False
                log.info("user store reachable again")
            found = (now, active, stamp)
            with self._lock:
                if len(self._users) > 10_000:  # unknown logins must not grow memory for ever
                    self._users.clear()
                self._users[login] = found
        return found
