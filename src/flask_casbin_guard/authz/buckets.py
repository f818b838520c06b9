"""The index's buckets: rule numbers filed by key, and within a key by pattern.

A bucket of a policy without a pattern term is a sorted list of rule numbers. With a pattern
term (``keyMatch2(r.obj, p.obj)``...), a :class:`PatternBucket` files literal patterns in a hash
map and the others under their *head*, the text every key they match starts with, cut after a
``/``: a request tries only the patterns filed under the prefixes of its own key that end with a
``/``, whatever the number of patterns in the bucket.

Buckets are built once per load, before the first request.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import cast

from .patterns import PatternFunction, Prepared

#: rules filed under one key or pattern: mostly one, kept as a bare number
Hits = int | list[int]
#: a bucket key: a value, a tuple of values, or "" (no key terms)
Key = Hashable


class PatternBucket:
    """The rules of one key, by pattern: literal ones hashed, the others under their head."""

    __slots__ = ("heads", "lengths", "literal", "patterns")

    def __init__(
        self,
        literal: dict[str, Hits] | None = None,
        patterns: dict[str, Hits] | None = None,
        heads: dict[str, str | list[str]] | None = None,
    ) -> None:
        #: literal pattern -> rules
        self.literal = literal if literal is not None else {}
        #: any other pattern -> rules
        self.patterns = patterns if patterns is not None else {}
        #: head -> the pattern (or patterns) of :attr:`patterns` filed under it
        self.heads = heads if heads is not None else {}
        #: the lengths of the heads: a request probes the prefixes of its key of these lengths
        self.lengths: tuple[int, ...] = ()
        self.measure()

    def measure(self) -> None:
        """Update :attr:`lengths` after :attr:`heads` changed."""
        self.lengths = tuple(sorted({len(head) for head in self.heads}))


def file_rules(keys: Iterable[Key]) -> dict[Key, list[int]]:
    """Key -> the rules (numbered in order) that have it."""
    groups: dict[Key, list[int]] = {}
    for index, key in enumerate(keys):
        found = groups.get(key)
        if found is None:
            groups[key] = [index]
        else:
            found.append(index)
    return groups


def file_patterns(
    keys: Iterable[Key], texts: Iterable[str], pattern: PatternFunction
) -> dict[Key, PatternBucket]:
    """Key -> :class:`PatternBucket`; the patterns must be prepared."""
    heads: dict[str, str | None] = {}  # pattern -> head, or None for a literal one
    buckets: dict[Key, PatternBucket] = {}
    for index, (key, text) in enumerate(zip(keys, texts, strict=True)):
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = PatternBucket()
        if text in heads:
            head = heads[text]
        else:
            head = heads[text] = None if pattern.literal(text) else pattern.head(text)
        side = bucket.literal if head is None else bucket.patterns
        found = side.get(text)
        if found is None:
            side[text] = index
            if head is not None:
                listed = bucket.heads.get(head)
                if listed is None:
                    bucket.heads[head] = text
                elif type(listed) is str:
                    bucket.heads[head] = [listed, text]
                else:
                    cast(list[str], listed).append(text)
        elif type(found) is int:
            side[text] = [found, index]
        else:
            cast(list[int], found).append(index)
    for bucket in buckets.values():
        bucket.measure()
    return buckets


def match_patterns(
    buckets: Iterable[PatternBucket], key: str, pattern: PatternFunction, prepared: Prepared
) -> list[int]:
    """The rules of ``buckets`` whose pattern matches ``key``, in policy order."""
    texts = pattern.lookup_keys(key)
    wanted = pattern.request_key(key)
    merged: list[int] = []
    for bucket in buckets:
        literal = bucket.literal
        for text in texts:
            hits = literal.get(text)
            if hits is None:
                pass
            elif isinstance(hits, int):
                merged.append(hits)
            else:
                merged.extend(hits)
        filed = bucket.heads
        for length in bucket.lengths:
            listed = filed.get(wanted[:length])
            if listed is None:
                continue
            for text in (listed,) if type(listed) is str else listed:
                function, argument = prepared[text]
                if function(wanted, argument):
                    hits = bucket.patterns[text]
                    if isinstance(hits, int):
                        merged.append(hits)
                    else:
                        merged.extend(hits)
    if len(merged) > 1:
        merged.sort()
    return merged
