"""What changed between two loads of a policy, for a reload that rebuilds only that.

Stores hand back the same :class:`PolicyRow` objects for the lines they read before (CSV and
database stores keep the rows they validated), so the common prefix and suffix of two loads are
found by identity at C speed; what lies between is the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress, count, islice
from operator import attrgetter, countOf, is_not

from ..store.csv import PolicyRow
from .assemble import paused_gc
from .index import IndexedPolicy
from .matcher import Unsupported

#: a reload rebuilds from scratch when more rows than this changed
MAX_CHANGED_ROWS = 2000

_PTYPE = attrgetter("ptype")


def changed_span(old: Sequence[PolicyRow], new: Sequence[PolicyRow]) -> tuple[int, int, int]:
    """``(start, old_end, new_end)``: ``old[start:old_end]`` became ``new[start:new_end]``."""
    shorter = min(len(old), len(new))
    start = _common(old, new, shorter)
    tail = _common(old[::-1], new[::-1], shorter - start)
    return start, len(old) - tail, len(new) - tail


def _common(old: Sequence[PolicyRow], new: Sequence[PolicyRow], limit: int) -> int:
    """How many leading rows the two have in common (at most ``limit``)."""
    position = 0
    while position < limit:
        # Identical objects first (C speed), then an equality check where identity fails.
        differs = map(is_not, islice(old, position, limit), islice(new, position, limit))
        position = next(compress(count(position), differs), limit)
        if position == limit or old[position] != new[position]:
            return position
        position += 1
    return limit


def derive_index(
    index: IndexedPolicy | None, old: Sequence[PolicyRow], new: Sequence[PolicyRow]
) -> IndexedPolicy | None:
    """``index`` (built from ``old``) updated to ``new``, or ``None`` if only a build can.

    Only changes to ``p`` rows are derived, and only for models whose rules keep the order of
    the rows (no priority sorting): role changes rebuild the role graphs from scratch.

    :raises Unsupported: as a full build would, for the changed rows.
    """
    if index is None or not index.in_row_order:
        return None
    start, old_end, new_end = changed_span(old, new)
    if old_end - start + new_end - start > MAX_CHANGED_ROWS:
        return None
    removed, added = old[start:old_end], new[start:new_end]
    if any(row.ptype != "p" for row in [*removed, *added]):
        return None
    before = countOf(map(_PTYPE, islice(old, start)), "p")
    try:
        with paused_gc():
            return index.derived(before, len(removed), [row.values for row in added])
    except Unsupported:
        return None  # the full build says why
