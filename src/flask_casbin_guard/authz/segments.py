"""Regex-free matchers for the keyMatch family, exact and linear in the length of the key.

pycasbin turns a ``keyMatch2``, ``keyMatch3`` or ``keyMatch5`` pattern into an (unescaped)
regular expression and runs ``re.match`` on it. For the patterns people write (literal text,
``:name`` or ``{name}`` parameters, ``/*`` and ``.``) that expression is a *chain*: literal
characters, ``.`` (any character but a newline), ``[^/]+`` (a parameter) and ``.*`` (any run
without a newline), anchored with ``^`` and ``$``. This module matches such chains directly:

- no compilation: reading a pattern costs a ``re.split`` (building 100,000 regular expressions
  at load would take tens of seconds, and compiling them lazily made every first request slow);
- no backtracking: a chain without ``.`` and ``.*`` lines up with the key at its ``/``
  characters, which parameters never cross, and each segment is matched greedily; any other
  chain runs as a set-of-states automaton, one pass over the key.

Patterns outside the chains (quantifiers, groups, classes: pycasbin keeps them as regular
expressions) return ``None`` from :func:`chain`; the caller then uses ``re`` itself.

``$`` also matches just before a final newline: a chain matches ``key`` when it matches the
whole key, or the key without its final ``"\\n"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: one token of a chain: a literal run, or one of the wildcards below
LITERAL, DOT, PARAM, STAR = range(4)
Token = tuple[int, str]
#: ``(function, argument)``: ``function(key, argument)`` answers; small and shareable
Compiled = tuple[Callable[[str, Any], bool], Any]

#: how pycasbin rewrites each function's parameters, as tokens of the pattern text
#: (after ``/*`` -> ``/.*``); each alternative is one of the rewritings in builtin_operators.py
_TOKENS = {
    "keyMatch2": re.compile(r"(/\*|:[^/]+|\.)"),
    "keyMatch3": re.compile(r"(/\*|\{[^/]+?\}|\.)"),
    "keyMatch5": re.compile(r"(/\*|\{[^/]+\}|\.)"),
}
#: characters with a regex meaning in a literal run: such patterns are not chains
_SPECIAL = re.compile(r"[*+?{}\[\]\\|()^$]")


#: the usual keyMatch2 pattern, read in one step: literal text, then one ":name" or "/*"
_USUAL2 = re.compile(r"([^*+?{}\[\]\\|()^$:.]*)(:[^/]+|/\*)?")


def usual(pattern: str) -> Compiled | None:
    """The matcher of a keyMatch2 pattern of the usual shape, without reading it as tokens."""
    found = _USUAL2.fullmatch(pattern)
    if found is None:
        return None
    text, last = found.groups()
    if last is None:
        return (_exact, text)
    return (_head_star, text + "/") if last == "/*" else (_head_param, text)


def chain(name: str, pattern: str) -> list[Token] | None:
    """The chain pycasbin's rewriting of ``pattern`` amounts to, or ``None``."""
    if name == "keyMatch2" and pattern == "*":
        return [(STAR, "")]  # pycasbin's special case: "(.*)"
    tokens: list[Token] = []
    text = ""
    for position, part in enumerate(_TOKENS[name].split(pattern)):
        if position % 2 == 0:
            if _SPECIAL.search(part):
                return None
            text += part
            continue
        if part == "/*":
            text += "/"
        if text:
            tokens.append((LITERAL, text))
            text = ""
        tokens.append((STAR if part == "/*" else DOT if part == "." else PARAM, ""))
    if text:
        tokens.append((LITERAL, text))
    return tokens


def prefix(tokens: list[Token]) -> str:
    """The literal text every key the chain matches starts with."""
    return tokens[0][1] if tokens and tokens[0][0] == LITERAL else ""


def compile_chain(tokens: list[Token]) -> Compiled:
    """A matcher for ``tokens``, specialised for the common shapes."""
    head = prefix(tokens)
    kinds = [kind for kind, _ in tokens[1 if head else 0 :]]
    if not kinds:
        return (_exact, head)
    if kinds == [PARAM]:
        return (_head_param, head)
    if kinds == [STAR]:
        return (_head_star, head)
    if DOT not in kinds and STAR not in kinds:
        return (_segments, _split_segments(tokens))
    return (_automaton, _program(tokens))


def _exact(key: str, text: str) -> bool:
    return key == text or key == text + "\n"


def _head_param(key: str, head: str) -> bool:
    # "head[^/]+$": a non-empty rest without "/" (a final newline is part of the parameter)
    return key.startswith(head) and len(key) > len(head) and key.find("/", len(head)) == -1


def _head_star(key: str, head: str) -> bool:
    # "head.*$": no newline after the head, except one at the very end
    return key.startswith(head) and key.find("\n", len(head), len(key) - 1) == -1


#: chain matchers whose argument is the chain's literal prefix
PREFIXED_CHAINS = (_exact, _head_param, _head_star)


# -- chains without "." or ".*": segment by segment -------------------------------------------

#: one segment: its literal runs around its parameters (one run: no parameter)
Segment = tuple[str, ...]


def _split_segments(tokens: list[Token]) -> tuple[Segment, ...]:
    segments: list[list[str]] = [[""]]
    for kind, text in tokens:
        if kind == PARAM:
            segments[-1].append("")
            continue
        pieces = text.split("/")
        segments[-1][-1] += pieces[0]
        segments.extend([piece] for piece in pieces[1:])
    return tuple(tuple(runs) for runs in segments)


def _segments(key: str, segments: tuple[Segment, ...]) -> bool:
    # Parameters never cross "/" and literal runs hold every "/" of the chain: the key's
    # segments line up with the chain's.
    if _segments_full(key, segments):
        return True
    return key.endswith("\n") and _segments_full(key[:-1], segments)


def _segments_full(key: str, segments: tuple[Segment, ...]) -> bool:
    parts = key.split("/")
    if len(parts) != len(segments):
        return False
    for part, runs in zip(parts, segments, strict=True):
        if len(runs) == 1:
            if part != runs[0]:
                return False
        elif not _segment(part, runs):
            return False
    return True


def _segment(part: str, runs: Segment) -> bool:
    """``runs[0] P runs[1] P ... runs[-1]``, each ``P`` one or more characters."""
    first, last = runs[0], runs[-1]
    end = len(part) - len(last)
    if end < len(first) or not part.startswith(first) or not part.endswith(last):
        return False
    position = len(first)
    # The earliest place for each inner run leaves the most room for the rest: greedy is exact.
    for run in runs[1:-1]:
        found = part.find(run, position + 1, end - 1)
        if found == -1:
            return False
        position = found + len(run)
    return end - position >= 1


# -- any chain: a set of states, one pass over the key ----------------------------------------

#: what one step takes: a literal character, any but a newline, or any but "/"
_CHARACTER, _NOT_NEWLINE, _NOT_SLASH = range(3)
#: ``(what it takes, the character, whether it repeats: then it may also be skipped)``
Step = tuple[int, str, bool]
Program = tuple[tuple[Step, ...], tuple[frozenset[int], ...]]


def _program(tokens: list[Token]) -> Program:
    steps: list[Step] = []
    for kind, text in tokens:
        if kind == LITERAL:
            steps += [(_CHARACTER, character, False) for character in text]
        elif kind == DOT:
            steps.append((_NOT_NEWLINE, "", False))
        elif kind == PARAM:
            steps += [(_NOT_SLASH, "", False), (_NOT_SLASH, "", True)]
        else:
            steps.append((_NOT_NEWLINE, "", True))
    # closure[i]: state i and the states reached from it by skipping repeatable steps
    closure: list[frozenset[int]] = [frozenset((len(steps),))]
    for index in range(len(steps) - 1, -1, -1):
        after = closure[0] if steps[index][2] else frozenset()
        closure.insert(0, frozenset((index,)) | after)
    return tuple(steps), tuple(closure)


def _automaton(key: str, program: Program) -> bool:
    # One pass, at most len(steps) states per character: linear time, whatever the pattern.
    steps, closure = program
    final = len(steps)
    states = closure[0]
    last = len(key) - 1
    for position, character in enumerate(key):
        if position == last and character == "\n" and final in states:
            return True  # "$" before a final newline
        following: set[int] = set()
        for state in states:
            if state == final:
                continue
            takes, wanted, repeat = steps[state]
            if takes == _CHARACTER:
                ok = character == wanted
            elif takes == _NOT_NEWLINE:
                ok = character != "\n"
            else:
                ok = character != "/"
            if ok:
                following.update(closure[state] if repeat else closure[state + 1])
        if not following:
            return False
        states = frozenset(following)
    return final in states
