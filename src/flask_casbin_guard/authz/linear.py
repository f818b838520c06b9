"""Policy regular expressions run on RE2: time linear in the request value, Python's answers.

pycasbin runs ``regexMatch`` patterns, and the regular expressions it builds from keyMatch
patterns, with Python's backtracking ``re``: ``^doc:(a+)+$`` against ``doc:aaaa…!`` takes time
doubling with each character, and holds the GIL meanwhile (one request stalls the worker). RE2
never backtracks, but its syntax and semantics differ from ``re`` in places (``$``, ``\\d``,
``\\w``, flags, lookarounds...). So the pattern is not handed to RE2 as written: Python's own
parser reads it (``re._parser``, the very parse ``re.compile`` uses, so nothing is read
differently), and :func:`translate` writes that tree back in RE2 syntax construct by construct,
with every character class spelled out as code point ranges computed from Python's ``re``
itself. Anything without an exact RE2 equivalent is refused with :class:`Refused`:
backreferences, lookarounds, conditionals, atomic groups and possessive repeats, word
boundaries, flags, repeat counts above RE2's 1000, and ``$`` anywhere but at the very end.

Lone surrogates cannot be handed to RE2 (UTF-8 has no encoding for them): a request value's
surrogates become U+FFFD first, which is exact because a translated pattern treats the two
alike (patterns naming either one explicitly are refused).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from typing import Any, cast

import re2

# The parser behind re.compile: private (typeshed has no stubs for it), but reading patterns
# with it is what makes the translation agree with re: a parser of our own would differ on
# some corner of the syntax.
sre: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")

#: RE2's limit on ``{n,m}`` counts
MAX_COUNT = 1000
#: code points Python and RE2 would see differently: surrogates, and their stand-in U+FFFD
_SURROGATES = (0xD800, 0xDFFF)
_STAND_IN = 0xFFFD
_SURROGATE = re.compile("[\ud800-\udfff]")

#: ``text -> bool``: whether the translated pattern matches at the start of ``text``
Matcher = Callable[[str], bool]


class Refused(ValueError):
    """The pattern uses syntax with no exact linear-time equivalent."""


def translate(pattern: str) -> str:
    """The RE2 expression that matches exactly where ``re.match(pattern, text)`` does.

    :raises Refused: naming the construct without an exact equivalent.
    :raises re.error: when Python itself would not compile ``pattern``.
    """
    tree = sre_parse.parse(pattern)
    if tree.state.flags & ~sre.SRE_FLAG_UNICODE:
        raise Refused("inline flags such as (?i) or (?s)")
    return "^(?:" + _sequence(list(tree.data), True) + ")"


def compile_linear(pattern: str) -> tuple[Any, Matcher]:
    """``(RE2 regex, matcher)`` for a Python pattern; see :func:`translate`.

    :raises Refused: as :func:`translate`, or when RE2 cannot build it within its memory.
    """
    try:
        compiled = re2.compile(translate(pattern))
    except re2.error as error:
        raise Refused(f"RE2 cannot build it: {error}") from None
    search = compiled.search

    def matches(text: str) -> bool:
        return search(_encodable(text)) is not None

    return compiled, matches


def groups(compiled: Any, text: str) -> tuple[str | None, ...] | None:
    """The groups of a match at the start of ``text``, or ``None`` when it does not match."""
    found = compiled.search(_encodable(text))
    return None if found is None else cast(tuple[str | None, ...], tuple(found.groups()))


def check(pattern: str) -> None:
    """Raise :class:`Refused` (or ``re.error``) unless ``pattern`` runs in linear time."""
    compile_linear(pattern)


def _encodable(text: str) -> str:
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


# -- the translation -------------------------------------------------------------------------


def _sequence(items: list[tuple[Any, Any]], last: bool = False) -> str:
    """``last``: nothing can follow the sequence in a match (the end of the pattern)."""
    ends = [last and position == len(items) - 1 for position in range(len(items))]
    return "".join(_item(op, av, end) for (op, av), end in zip(items, ends, strict=True))


def _item(op: Any, av: Any, last: bool) -> str:
    if op is sre.LITERAL:
        return _char(av)
    if op is sre.NOT_LITERAL:
        return "[^" + _char(av) + "]"
    if op is sre.ANY:
        return "[^\\n]"  # no (?s) flag is accepted: "." never matches a newline
    if op is sre.IN:
        return _class(av)
    if op is sre.BRANCH:
        return "(?:" + "|".join(_sequence(list(branch), last) for branch in av[1]) + ")"
    if op is sre.SUBPATTERN:
        group, add_flags, del_flags, body = av
        if add_flags or del_flags:
            raise Refused("flags inside a group, such as (?i:...)")
        # Into a capturing group "$" would consume its newline: keyMatch4 reads the groups.
        inner = _sequence(list(body), last and group is None)
        return "(?:" + inner + ")" if group is None else "(" + inner + ")"
    if op is sre.MAX_REPEAT or op is sre.MIN_REPEAT:
        low, high, body = av
        if low > MAX_COUNT or (high != sre.MAXREPEAT and high > MAX_COUNT):
            raise Refused(f"a repeat count above {MAX_COUNT}")
        count = f"{{{low},}}" if high == sre.MAXREPEAT else f"{{{low},{high}}}"
        lazy = "?" if op is sre.MIN_REPEAT else ""
        return "(?:" + _sequence(list(body)) + ")" + count + lazy
    if op is sre.AT:
        if av in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING):
            return "\\A"
        if av is sre.AT_END_STRING:
            return "\\z"
        if av is sre.AT_END and last:
            # "$" matches at the end or before a final newline; nothing follows it here, so
            # consuming that newline gives the same answer.
            return "(?:\\n?\\z)"
        if av is sre.AT_END:
            raise Refused("'$' anywhere but at the end of the pattern")
        raise Refused("word boundaries (\\b, \\B)")
    names = {
        sre.GROUPREF: "backreferences",
        sre.GROUPREF_EXISTS: "conditional groups",
        sre.ASSERT: "lookarounds",
        sre.ASSERT_NOT: "lookarounds",
    }
    raise Refused(names.get(op, "atomic groups and possessive repeats"))


def _char(code: int) -> str:
    if _SURROGATES[0] <= code <= _SURROGATES[1] or code == _STAND_IN:
        raise Refused("surrogates and U+FFFD")
    return f"\\x{{{code:x}}}"


def _class(items: list[tuple[Any, Any]]) -> str:
    negate = False
    ranges: list[tuple[int, int]] = []
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            ranges.append((av, av))
        elif op is sre.RANGE:
            ranges.append(av)
        elif op is sre.CATEGORY:
            ranges.extend(_category(av))
        else:  # RANGE_UNI_IGNORE and the like come with flags, refused above
            raise Refused(f"class item {op}")
    _check_ranges(ranges)
    parts = [piece for low, high in ranges for piece in _pieces(low, high)]
    if not parts:
        # "[^\x00-\U0010ffff]"-like: RE2 has no empty class; match nothing, as Python would
        return "[^\\x{0}-\\x{10ffff}]" if not negate else "[\\x{0}-\\x{10ffff}]"
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _check_ranges(ranges: list[tuple[int, int]]) -> None:
    # A class must hold all or none of the surrogates and U+FFFD: they are one to RE2.
    low, high = _SURROGATES
    held = {code for a, b in ranges for code in range(max(a, low), min(b, high) + 1)}
    stand_in = any(a <= _STAND_IN <= b for a, b in ranges)
    if (len(held), stand_in) not in ((0, False), (high - low + 1, True)):
        raise Refused("a class that holds some of the surrogates and U+FFFD but not all")


def _pieces(low: int, high: int) -> list[str]:
    # Surrogates never reach RE2 (see _encodable): leave them out of the ranges it compiles.
    spans = [(low, min(high, _SURROGATES[0] - 1)), (max(low, _SURROGATES[1] + 1), high)]
    return [f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in spans if a <= b]


def _category(category: Any) -> tuple[tuple[int, int], ...]:
    """The code point ranges of ``\\d``, ``\\w``, ``\\s`` or their complements, as ``re`` has
    them for ``str`` patterns (Unicode, in this Python's Unicode version)."""
    found = _categories().get(category)
    if found is None:
        raise Refused(f"class category {category}")
    return found


@functools.cache
def _categories() -> dict[Any, tuple[tuple[int, int], ...]]:
    # All six at once: the string of every code point (4 MB) is needed only while they are read.
    every = "".join(map(chr, range(0x110000)))
    escapes = {
        sre.CATEGORY_DIGIT: r"\d",
        sre.CATEGORY_NOT_DIGIT: r"\D",
        sre.CATEGORY_SPACE: r"\s",
        sre.CATEGORY_NOT_SPACE: r"\S",
        sre.CATEGORY_WORD: r"\w",
        sre.CATEGORY_NOT_WORD: r"\W",
    }
    return {
        category: tuple((run.start(), run.end() - 1) for run in re.finditer(escape + "+", every))
        for category, escape in escapes.items()
    }
