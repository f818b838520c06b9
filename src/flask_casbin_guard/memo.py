"""A memoizing LRU cache bounded in bytes as well as in entries.

``functools.lru_cache`` bounds the number of entries only: when the arguments come from a
client (an object value, a token), one entry may weigh a megabyte, and 16,384 of them pin
gigabytes. :class:`BoundedMemo` also keeps the total weight of its entries under a byte budget,
evicting the least recently used, and never stores a single entry heavier than that budget.
(``cachetools.LRUCache(maxsize=..., getsizeof=...)`` does the byte part; it is not a
dependency, and the entry bound would still need a second structure.)
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, NamedTuple, TypeVar

R = TypeVar("R")

#: bytes an entry costs beyond its key and value: the dict slot, the linked-list node, the pair
ENTRY_OVERHEAD = 160


class CacheInfo(NamedTuple):
    """``functools.lru_cache``'s statistics, plus the weight of the entries in bytes."""

    hits: int
    misses: int
    maxsize: int
    currsize: int
    bytes: int
    maxbytes: int


def weigh_strings(args: tuple[Any, ...]) -> int:
    """Bytes held by a tuple of arguments: the tuple and each of its members (not deeper)."""
    return sys.getsizeof(args) + sum(sys.getsizeof(arg) for arg in args)


def weigh_arguments(args: tuple[Any, ...], result: Any) -> int:
    """The arguments (:func:`weigh_strings`) and the result's tuples, one level deep.

    Strings inside the result are not counted: they are shared with a structure that outlives
    the entry (a decision's rule belongs to the policy).
    """
    size = weigh_strings(args) + sys.getsizeof(result)
    if isinstance(result, tuple):
        size += sum(sys.getsizeof(item) for item in result if isinstance(item, tuple))
    return size


class BoundedMemo(Generic[R]):
    """``func(*args)`` remembered per ``args``, least recently used first out.

    :param func: the function; a call that raises stores nothing.
    :param maxsize: entries kept at most.
    :param maxbytes: total weight of the entries kept at most (keys and values).
    :param weigh: ``(args, result) -> bytes`` that entry holds apart from what is shared with
        longer-lived structures (default :func:`weigh_arguments`).
    :param ttl: seconds an answer is used for (``None``: until evicted), for answers that
        another process may change (``time.monotonic`` measures it).
    """

    def __init__(
        self,
        func: Callable[..., R],
        maxsize: int,
        maxbytes: int,
        weigh: Callable[[tuple[Any, ...], R], int] = weigh_arguments,
        ttl: float | None = None,
    ) -> None:
        self._func = func
        self._maxsize = maxsize
        self._maxbytes = maxbytes
        self._weigh = weigh
        self._ttl = ttl
        #: args -> (result, weight, monotonic time it was computed)
        self._entries: OrderedDict[Hashable, tuple[R, int, float]] = OrderedDict()
        self._bytes = 0
        self._hits = self._misses = 0
        # Bumped by cache_clear: an answer computed before a clear is not stored after it.
        self._generation = 0
        # Compound updates (move, evict, count bytes) must not interleave between threads.
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> R:
        # Taken before the call: an answer is never used past ttl after it was asked for.
        now = time.monotonic() if self._ttl is not None else 0.0
        with self._lock:
            found = self._entries.get(args)
            if found is not None and (self._ttl is None or now - found[2] <= self._ttl):
                self._entries.move_to_end(args)
                self._hits += 1
                return found[0]
            self._misses += 1
            generation = self._generation
        result = self._func(*args)  # outside the lock: calls may run concurrently
        size = self._weigh(args, result) + ENTRY_OVERHEAD
        if size > self._maxbytes:
            return result  # would evict everything else and still not fit
        with self._lock:
            if generation != self._generation:
                return result  # asked before a change this process made: possibly stale
            previous = self._entries.pop(args, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[args] = (result, size, now)
            self._bytes += size
            while len(self._entries) > self._maxsize or self._bytes > self._maxbytes:
                _, (_, dropped, _) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return result

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(
                self._hits,
                self._misses,
                self._maxsize,
                len(self._entries),
                self._bytes,
                self._maxbytes,
            )

    def cache_clear(self) -> None:
        """Forget every answer, and those being computed meanwhile."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._bytes = 0
            self._hits = self._misses = 0
