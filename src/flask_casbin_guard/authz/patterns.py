"""pycasbin's pattern functions, compiled once per pattern instead of once per call.

Each :class:`PatternFunction` reproduces one of pycasbin's built-in matcher functions
(``keyMatch`` ... ``keyMatch5``, ``regexMatch``, ``globMatch``) for string arguments, quirks
included: ``keyMatch2`` builds an unescaped regular expression, ``regexMatch`` is anchored at the
start only, and ``$`` also matches before a final newline. The pattern-to-regex rewriting is
copied from ``casbin/util/builtin_operators.py``; tests compare every function against pycasbin.

Two things make a policy fast to index:

- a *literal* pattern matches exactly the keys :meth:`PatternFunction.lookup_keys` derives from
  a request value, so it can live in a hash map;
- :meth:`PatternFunction.check` tells at load whether evaluating a pattern could ever raise;
  most patterns are proved safe without compiling them, and compiling happens on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

#: pycasbin's rewriting patterns (builtin_operators.py), applied to policy values
_KEY_MATCH2 = re.compile(r"(.*?):[^\/]+(.*?)")
_KEY_MATCH3 = re.compile(r"(.*?){[^\/]+?}(.*?)")
_KEY_MATCH4 = re.compile(r"{([^/]+)}")
_KEY_MATCH5 = re.compile(r"{[^/]+}")

#: characters with a meaning in a Python regular expression outside a character class
_SPECIAL = frozenset(".^$*+?{}[]\\|()")
#: a rewritten keyMatch body made of atoms that always compile: the rewritings' own
#: ``[^/]+``, ``.*`` and ``(.*)``, and characters that are no quantifier, group or class
_PLAIN_BODY = re.compile(r"(?:\[\^\\?/\]\+|\(\.\*\)|\.\*|[^*+?{}\[\]\\|()])*")
#: a keyMatch2 pattern whose rewriting is plain: characters as above, ``/*``, and ``:name``
#: parameters (which swallow everything up to the next ``/``); checked without rewriting
_PLAIN_KEY_MATCH2 = re.compile(r"(?:[^*+?{}\[\]\\|():/]|/\*|/|:[^/]+|:)*")

Matcher = Callable[[str], bool]


class InvalidPattern(ValueError):
    """Evaluating this pattern could raise (pycasbin would fail on the request reaching it)."""


class PatternFunction:
    """One pycasbin pattern function, ``fn(key, pattern)``, for string arguments."""

    #: names of the functions this module reproduces
    NAMES = frozenset(
        ("keyMatch", "keyMatch2", "keyMatch3", "keyMatch4", "keyMatch5", "regexMatch", "globMatch")
    )

    def __init__(self, name: str, builtin: Callable[..., object]) -> None:
        if name not in self.NAMES:
            raise ValueError(f"not a pattern function: {name!r}")
        self.name = name
        # globMatch goes through wcmatch, which is not worth reproducing: call pycasbin's.
        self._builtin = builtin
        self._compiled: dict[str, Matcher] = {}

    # -- hashing ----------------------------------------------------------------------------

    def literal(self, pattern: str) -> bool:
        """Whether ``pattern`` matches exactly the keys :meth:`lookup_keys` returns for it."""
        if self.name == "keyMatch":
            return "*" not in pattern
        if self.name in ("regexMatch", "globMatch"):
            return False  # prefix and glob semantics: not hashable
        if self.name == "keyMatch2" and ":" in pattern:
            return False
        return _SPECIAL.isdisjoint(pattern)

    def lookup_keys(self, key: str) -> tuple[str, ...]:
        """The literal patterns ``key`` matches: itself, and itself minus a final newline.

        pycasbin anchors with ``$``, which also matches just before a trailing ``"\\n"``.
        """
        if self.name == "keyMatch":
            return (key,)
        if self.name == "keyMatch5":
            cut = key.find("?")
            if cut != -1:
                key = key[:cut]
        if key.endswith("\n"):
            return (key, key[:-1])
        return (key,)

    # -- evaluation -------------------------------------------------------------------------

    def check(self, pattern: str) -> None:
        """Raise :class:`InvalidPattern` unless evaluating ``pattern`` can never raise."""
        if self.name == "keyMatch":
            return
        if self.name == "globMatch":
            try:
                self._builtin("", pattern)
            except Exception as error:  # wcmatch raises several kinds
                raise InvalidPattern(f"globMatch pattern {pattern!r}: {error}") from None
            return
        if self.name == "regexMatch":
            if _SPECIAL.isdisjoint(pattern):
                return
            body = pattern
        elif self.name == "keyMatch2" and (
            pattern == "*" or _PLAIN_KEY_MATCH2.fullmatch(pattern) is not None
        ):
            return
        else:
            body = self._regex(pattern)[1:-1]
            # keyMatch4 also counts groups, and a plain "(.*)" is one: always compile it.
            if self.name != "keyMatch4" and _plain(body):
                return
        try:
            compiled = re.compile(self._regex(pattern) if self.name != "regexMatch" else body)
        except Exception as error:  # re.error, OverflowError, RecursionError...
            raise InvalidPattern(f"{self.name} pattern {pattern!r}: {error}") from None
        if self.name == "keyMatch4" and compiled.groups != len(_KEY_MATCH4.findall(pattern)):
            # pycasbin raises "number of tokens is not equal to number of values" on a match
            raise InvalidPattern(f"keyMatch4 pattern {pattern!r} has groups of its own")

    def check_all(self, patterns: Iterable[str]) -> None:
        """:meth:`check` every pattern; the common keyMatch2 paths are proved in one pass."""
        if self.name == "keyMatch2":
            plain = _PLAIN_KEY_MATCH2.fullmatch
            patterns = [p for p in patterns if p != "*" and plain(p) is None]
        for pattern in patterns:
            self.check(pattern)

    def match(self, key: str, pattern: str) -> bool:
        """pycasbin's ``fn(key, pattern)``; ``pattern`` must have passed :meth:`check`."""
        matcher = self._compiled.get(pattern)
        if matcher is None:
            # A race compiles twice and stores equal matchers: harmless, so no lock.
            matcher = self._compiled[pattern] = self._compile(pattern)
        return matcher(key)

    def _compile(self, pattern: str) -> Matcher:
        name = self.name
        if name == "keyMatch":
            star = pattern.find("*")
            if star == -1:
                return pattern.__eq__
            prefix = pattern[:star]
            return lambda key: key.startswith(prefix)
        if name == "globMatch":
            builtin = self._builtin
            return lambda key: bool(builtin(key, pattern))
        if name == "regexMatch":
            if _SPECIAL.isdisjoint(pattern):
                return lambda key: key.startswith(pattern)
            search = re.compile(pattern).match
            return lambda key: search(key) is not None
        regex = re.compile(self._regex(pattern))
        if name == "keyMatch4":
            return _key_match4(regex, _KEY_MATCH4.findall(pattern))
        if name == "keyMatch5":
            return _key_match5(regex.match)
        full = regex.match
        return lambda key: full(key) is not None

    def _regex(self, pattern: str) -> str:
        """The anchored regular expression pycasbin builds for a keyMatch2..5 pattern."""
        key2 = pattern.replace("/*", "/.*")
        if self.name == "keyMatch2":
            key2 = _KEY_MATCH2.sub(r"\g<1>[^\/]+\g<2>", key2, 0)
            if key2 == "*":
                key2 = "(.*)"
        elif self.name == "keyMatch3":
            key2 = _KEY_MATCH3.sub(r"\g<1>[^\/]+\g<2>", key2, 0)
        elif self.name == "keyMatch4":
            key2 = _KEY_MATCH4.sub("([^/]+)", key2)
        else:
            key2 = _KEY_MATCH5.sub(r"[^/]+", key2, 0)
        return "^" + key2 + "$"


def _key_match4(regex: re.Pattern[str], tokens: list[str]) -> Matcher:
    def match(key: str) -> bool:
        found = regex.match(key)
        if found is None:
            return False
        values: dict[str, str] = {}
        for token, value in zip(tokens, found.groups(), strict=True):
            if values.setdefault(token, value) != value:
                return False
        return True

    return match


def _key_match5(full: Callable[[str], re.Match[str] | None]) -> Matcher:
    def match(key: str) -> bool:
        cut = key.find("?")
        if cut != -1:
            key = key[:cut]
        return full(key) is not None

    return match


def _plain(body: str) -> bool:
    """Whether a rewritten keyMatch body is a sequence of atoms that always compiles."""
    return _PLAIN_BODY.fullmatch(body) is not None
