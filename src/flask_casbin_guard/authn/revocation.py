"""What makes a once-valid credential invalid: logout, password change, disabled account.

Self-contained credentials (JWTs, signed session cookies) stay valid until they expire unless
the server keeps a list of the terminated ones and a per-user "issued before this is invalid"
stamp (ASVS 5.0 7.4.1). A :class:`Revocations` answers both, and whether an account is active.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from ..errors import AuthenticationFailed, GuardError, PolicyUnavailable
from ..identity import Identity

log = logging.getLogger("flask_casbin_guard")


class Revocations(Protocol):
    """Storage of revoked credential ids, per-user stamps and disabled accounts."""

    def is_revoked(self, jti: str) -> bool: ...

    def revoke(self, jti: str, expires_at: float) -> None: ...

    def valid_after(self, login: str) -> float | None:
        """Credentials issued before this epoch time are invalid (``None``: unknown user)."""
        ...

    def is_active(self, login: str) -> bool | None:
        """``False`` for a disabled account, ``None`` for one the store does not know."""
        ...


class MemoryRevocations:
    """Revocations kept in this process only: for one-process apps and tests.

    Several processes must share a database (the built-in user store) instead, or a logout in
    one worker would not be seen by the others.
    """

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self._stamps: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def revoke(self, jti: str, expires_at: float) -> None:
        with self._lock:
            now = time.time()
            # Expired entries are useless: the credential is refused for its age anyway.
            for old in [j for j, exp in self._revoked.items() if exp < now]:
                del self._revoked[old]
            self._revoked[jti] = expires_at

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
    login = identity.login
    if revocations.is_active(login) is False:
        raise AuthenticationFailed(f"{identity.scheme}: account disabled", login=login)
    claims = identity.claims
    jti = claims.get("jti")
    if isinstance(jti, str) and revocations.is_revoked(jti):
        raise AuthenticationFailed(f"{identity.scheme}: credential revoked", login=login)
    issued = claims.get("iat")
    stamp = revocations.valid_after(login)
    is_token = "exp" in claims or issued is not None
    if stamp is not None and is_token and (not isinstance(issued, int | float) or issued < stamp):
        raise AuthenticationFailed(f"{identity.scheme}: credential issued before revocation")
    return identity


class StoreRevocations:
    """Revocations kept in the user store (a database shared by every process).

    Answers are remembered for ``ttl`` seconds per login, so an authenticated request does not
    cost three queries; a change made through this process clears them at once, and other
    processes see it within ``ttl``.

    While the database is unreachable, a login answered before keeps its last answer (as the
    policy keeps its last good version), logged once per outage; anything this process cannot
    know (a login never seen, a token's ``jti``) is :class:`PolicyUnavailable` (503), never an
    allow and never a 500.
    """

    def __init__(self, store: Any, ttl: float = 1.0) -> None:
        self._store = store
        self._ttl = ttl
        self._users: dict[str, tuple[float, bool | None, float | None]] = {}
        self._lock = threading.Lock()
        self._down = False

    def is_revoked(self, jti: str) -> bool:
        try:
            return bool(self._store.is_revoked(jti))
        except GuardError as error:
            raise PolicyUnavailable(f"cannot check the token's revocation: {error}") from None

    def revoke(self, jti: str, expires_at: float) -> None:
        self._store.revoke_jti(jti, expires_at)

    def revoke_user(self, login: str) -> None:
        self._store.revoke_tokens(login)
        self.forget(login)

    def valid_after(self, login: str) -> float | None:
        return self._user(login)[2]

    def is_active(self, login: str) -> bool | None:
        return self._user(login)[1]

    def forget(self, login: str | None = None) -> None:
        """Drop remembered answers (one login, or all) after a change made here."""
        with self._lock:
            if login is None:
                self._users.clear()
            else:
                self._users.pop(login, None)

    def _user(self, login: str) -> tuple[float, bool | None, float | None]:
        now = time.monotonic()
        found = self._users.get(login)
        if found is None or now - found[0] > self._ttl:
            try:
                record = self._store.get(login)
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
            active = None if record is None else bool(record.active)
            stamp = None if record is None else float(record.tokens_valid_after)
            found = (now, active, stamp)
            with self._lock:
                if len(self._users) > 10_000:  # unknown logins must not grow memory for ever
                    self._users.clear()
                self._users[login] = found
        return found
