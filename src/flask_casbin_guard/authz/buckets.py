"""The index's buckets: rule numbers filed by key, and within a key by pattern.

A bucket of a policy without a pattern term is a sorted list of rule numbers. With a pattern
term (``keyMatch2(r.obj, p.obj)``...), a :class:`PatternBucket` files literal patterns in a hash
map and the others under their *head*, the text every key they match starts with, cut after a
``/``: a request tries only the patterns filed under the prefixes of its own key that end with a
``/``, whatever the number of patterns in the bucket.

Buckets are built once per full load. A reload after a small change derives the next engine's
buckets with :func:`refile`, copying only the buckets the change touches: the previous engine
keeps answering meanwhile, so nothing it can reach is ever modified.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, cast

from .patterns import PREFIXED, PatternFunction, Prepared

#: rules filed under one key or pattern: mostly one, kept as a bare number
Hits = int | list[int]
#: a bucket key: a value, a tuple of values, or "" (no key terms)
Key = Hashable
#: ``(key, pattern text, rule number, added)``: one rule filed (``True``) or withdrawn
Change = tuple[Key, str, int, bool]


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
        if heads:
            self.measure()

    def measure(self) -> None:
        """Update :attr:`lengths` after :attr:`heads` changed."""
        self.lengths = tuple(sorted({len(head) for head in self.heads}))

    def copy(self) -> PatternBucket:
        """A bucket whose maps can change without changing this one's."""
        return PatternBucket(dict(self.literal), dict(self.patterns), dict(self.heads))


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
    prepared = pattern.prepared
    for index, (key, text) in enumerate(zip(keys, texts, strict=True)):
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = PatternBucket()
        if text in heads:
            head = heads[text]
        elif pattern.literal(text):
            head = heads[text] = None
        else:
            function, argument = prepared[text]
            # most matchers hold the literal text every match starts with: cut it at "/"
            head = argument[: argument.rfind("/") + 1] if function in PREFIXED else None
            head = heads[text] = pattern.head(text) if head is None else head
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


def refile(
    buckets: dict[Key, Any], changes: Sequence[Change], pattern: PatternFunction | None
) -> dict[Key, Any]:
    """New buckets with ``changes`` applied; ``buckets`` and what it holds stay untouched."""
    result = dict(buckets)
    copied: set[Key] = set()
    for key, text, index, added in changes:
        if pattern is None:
            hits = _changed(result.get(key), index, added)
            if hits is None:
                result.pop(key, None)
            else:
                result[key] = [hits] if type(hits) is int else hits
            continue
        if key not in copied:
            found = result.get(key)
            result[key] = found.copy() if found is not None else PatternBucket()
            copied.add(key)
        bucket: PatternBucket = result[key]
        literal = pattern.literal(text)
        side = bucket.literal if literal else bucket.patterns
        before = side.get(text)
        after = _changed(before, index, added)
        if after is None:
            side.pop(text, None)
        else:
            side[text] = after
        if not literal and (before is None) != (after is None):
            _list_pattern(bucket.heads, pattern.head(text), text, after is not None)
            bucket.measure()
    for key in copied:  # emptied by the changes (a later change may have refilled it)
        if not (result[key].literal or result[key].patterns):
            del result[key]
    return result


def _changed(hits: Hits | None, index: int, added: bool) -> Hits | None:
    """``hits`` with ``index`` filed or withdrawn, as a new object; ``None`` when empty."""
    numbers = [] if hits is None else [hits] if type(hits) is int else list(cast(list[int], hits))
    if added:
        bisect.insort(numbers, index)
    elif index in numbers:
        numbers.remove(index)
    if not numbers:
        return None
    return numbers[0] if len(numbers) == 1 else numbers


def _list_pattern(heads: dict[str, str | list[str]], head: str, text: str, add: bool) -> None:
    listed = heads.get(head)
    texts = [] if listed is None else [listed] if type(listed) is str else list(listed)
    if add:
        texts.append(text)
    elif text in texts:
        texts.remove(text)
    if not texts:
        heads.pop(head, None)
    else:
        heads[head] = texts[0] if len(texts) == 1 else texts


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
