"""Successful password verifications remembered for a short time, per process.

A Basic client sends its password with every request, and argon2id costs tens of
milliseconds by design: verifying each one caps a Basic API at a few dozen requests per
second and core. A success is remembered under an HMAC, with a key drawn at random when the
process starts, of the login, the password and the stored hash: never the password, nor a
plain hash of it that an attacker holding a memory dump could test guesses against offline.

A remembered success is used only while it is fresh, the stored hash is unchanged (a password
changed by any process, or a disabled or deleted user, whose hash then reads ``None``) and the
login's revocation stamp is the one seen at verification (``revoke_user`` anywhere). A wrong
password never matches an entry, so it still pays a full verification, as an unknown login does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..memo import ENTRY_OVERHEAD

#: successes remembered per process at most, and the bytes they may hold
VERIFIED_CACHE_SIZE, VERIFIED_CACHE_BYTES = 4096, 4 << 20


class VerifiedPasswords:
    """Recent successful verifications, least recently used first out.

    :param ttl: seconds a success is used for (``GUARD_BASIC_CACHE_SECONDS``); 0 remembers
        nothing.
    :param maxsize: entries kept at most.
    :param maxbytes: total weight of the entries kept at most.
    """

    def __init__(
        self,
        ttl: float,
        maxsize: int = VERIFIED_CACHE_SIZE,
        maxbytes: int = VERIFIED_CACHE_BYTES,
    ) -> None:
        self._ttl = ttl
        self._maxsize = maxsize
        self._maxbytes = maxbytes
        # Per process and never stored: entries mean nothing to another process or a dump
        # taken after a restart.
        self._key = secrets.token_bytes(32)
        #: digest -> (login, stamp at verification, monotonic time of verification, weight)
        self._entries: OrderedDict[bytes, tuple[str, float | None, float, int]] = OrderedDict()
        self._bytes = 0
        #: bumped by :meth:`forget`: a success verified meanwhile is not remembered
        self.generation = 0
        # Compound updates (move, evict, count bytes) must not interleave between threads.
        self._lock = threading.Lock()

    def _digest(self, login: str, password: str, stored: str) -> bytes:
        # Lengths first, so no two (login, hash, password) triples share an input.
        text = f"{len(login)}:{login}{len(stored)}:{stored}{password}"
        # surrogatepass: a lone surrogate was never verified, so it only has to hash somewhere.
        data = text.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def known(
        self,
        login: str,
        password: str,
        stored: str | None,
        stamp: Callable[[str], float | None],
    ) -> bool:
        """Whether this exact password was verified against ``stored`` within the TTL, and
        the login's revocation stamp (``stamp(login)``, read only for an entry found) has not
        moved since. An unknown login (``stored`` is ``None``) costs what a wrong password does."""
        if self._ttl <= 0:
            return False
        digest = self._digest(login, password, stored or "")
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(digest)
        if found is None or stored is None:
            return False
        fresh = now - found[2] <= self._ttl and found[1] == stamp(login)
        with self._lock:
            if self._entries.get(digest) is not found:
                return False  # forgotten or replaced meanwhile
            if not fresh:
                del self._entries[digest]
                self._bytes -= found[3]
                return False
            self._entries.move_to_end(digest)
            return True

    def remember(
        self, login: str, password: str, stored: str, stamp: float | None, generation: int
    ) -> None:
        """Remember a successful verification (never call it for a failed one) that started
        at ``generation`` with the login's revocation stamp at ``stamp``."""
        if self._ttl <= 0:
            return
        digest = self._digest(login, password, stored)
        size = sys.getsizeof(digest) + sys.getsizeof(login) + ENTRY_OVERHEAD
        if size > self._maxbytes:
            return
        with self._lock:
            if generation != self.generation:
                return  # verified across a password change, a disable or a revocation
            previous = self._entries.pop(digest, None)
            if previous is not None:
                self._bytes -= previous[3]
            self._entries[digest] = (login, stamp, time.monotonic(), size)
            self._bytes += size
            while len(self._entries) > self._maxsize or self._bytes > self._maxbytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped[3]

    def forget(self, login: str | None = None) -> None:
        """Drop the successes of ``login`` (or all): its password changed, it was disabled,
        deleted or revoked. The checks in :meth:`known` refuse them anyway; dropping them at
        once also keeps no trace of the old password in memory."""
        with self._lock:
            self.generation += 1
            if login is None:
                self._entries.clear()
                self._bytes = 0
                return
            for digest in [d for d, entry in self._entries.items() if entry[0] == login]:
                self._bytes -= self._entries.pop(digest)[3]

    def __len__(self) -> int:
        return len(self._entries)
