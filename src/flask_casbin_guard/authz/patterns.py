"""pycasbin's pattern functions, each pattern prepared once, at load, for every request.

Each :class:`PatternFunction` reproduces one of pycasbin's built-in matcher functions
(``keyMatch`` ... ``keyMatch5``, ``regexMatch``, ``globMatch``) for string arguments, quirks
included: ``keyMatch2`` builds an unescaped regular expression, ``regexMatch`` is anchored at the
start only, and ``$`` also matches before a final newline. The pattern-to-regex rewriting is
copied from ``casbin/util/builtin_operators.py``; tests compare every function against pycasbin.

:meth:`PatternFunction.prepare` turns every pattern of a policy into a small matcher before the
first request: the keyMatch family's usual patterns become regex-free chains (:mod:`.segments`,
cheap to build and linear to run), ``keyMatch`` and plain ``regexMatch`` patterns prefix tests;
only patterns that really are regular expressions or globs are compiled, by RE2
(:mod:`.linear`, which refuses what it cannot run exactly) or ``wcmatch``. Prepared matchers
are kept by pattern text and handed to the next engine, so a reload prepares only the patterns
it has not seen.

Three things make a policy fast to index:

- a *literal* pattern matches exactly the keys :meth:`PatternFunction.lookup_keys` derives from
  a request value, so it can live in a hash map;
- every key a pattern matches starts with its :meth:`PatternFunction.head`, so a request only
  tries the patterns filed under the heads of its own key (a prefix index);
- :meth:`PatternFunction.check` tells at load whether evaluating a pattern could ever raise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, cast

from wcmatch import glob

from . import linear
from .segments import PREFIXED_CHAINS, Compiled, chain, compile_chain, prefix, usual

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

#: prepared matchers by pattern text, shared by the engines of one app (see prepare)
Prepared = MutableMapping[str, Compiled]


class InvalidPattern(ValueError):
    """Evaluating this pattern could raise (pycasbin would fail on the request reaching it)."""


class PatternFunction:
    """One pycasbin pattern function, ``fn(key, pattern)``, for string arguments."""

    #: names of the functions this module reproduces
    NAMES = frozenset(
        ("keyMatch", "keyMatch2", "keyMatch3", "keyMatch4", "keyMatch5", "regexMatch", "globMatch")
    )

    def __init__(
        self,
        name: str,
        builtin: Callable[..., object],
        prepared: Prepared | None = None,
        *,
        reuse: Mapping[str, Compiled] | None = None,
    ) -> None:
        if name not in self.NAMES:
            raise ValueError(f"not a pattern function: {name!r}")
        self.name = name
        self._builtin = builtin
        #: pattern text -> matcher, filled by :meth:`prepare` (possibly shared with a previous
        #: engine of the same function: entries are never changed once stored)
        self.prepared: Prepared = {} if prepared is None else prepared
        #: matchers a previous engine prepared: taken over by :meth:`prepare` when still used
        self._reuse: Mapping[str, Compiled] = reuse if reuse is not None else {}

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
        key = self.request_key(key)
        if key.endswith("\n"):
            return (key, key[:-1])
        return (key,)

    def request_key(self, key: str) -> str:
        """What the function compares: ``keyMatch5`` drops a query string first."""
        if self.name == "keyMatch5":
            cut = key.find("?")
            if cut != -1:
                return key[:cut]
        return key

    def head(self, pattern: str) -> str:
        """Text every key matching ``pattern`` starts with, up to a ``/`` (``""``: none known).

        Heads end at a ``/`` so that a request probes few of them: the prefixes of its key that
        end with one. ``pattern`` must have been prepared.
        """
        function, argument = self.matcher(pattern)
        if function in PREFIXED:
            text = argument
        elif self.name in _CHAINS:
            tokens = chain(self.name, pattern)
            text = prefix(tokens) if tokens is not None else ""
        else:
            return ""
        return cast(str, text)[: text.rfind("/") + 1]

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

    def accept(self, pattern: str) -> str:
        """Prepare ``pattern``, or say why it is refused: it would need Python's backtracking.

        Patterns Python itself cannot compile are not refused here (nor prepared): pycasbin
        fails on the requests reaching them, and so does the engine.
        """
        if pattern in self.prepared:
            return ""
        compiled = self._reuse.get(pattern) or self._plain_matcher(pattern)
        if compiled is None:
            try:
                self.check(pattern)
            except InvalidPattern:
                # pycasbin answers some requests on it and fails on others: its evaluation runs
                # on RE2 all the same, so what RE2 cannot run is refused here too (else every
                # request reaching it would fail where pycasbin answers).
                try:
                    self._compile(pattern)
                except linear.Refused as error:
                    return str(error)
                except Exception:  # Python cannot compile it: it fails as pycasbin's does
                    return ""
                return ""
            try:
                compiled = self._compile(pattern)
            except linear.Refused as error:
                return str(error)
        self.prepared[pattern] = compiled
        return ""

    def prepare(self, patterns: Iterable[str]) -> None:
        """:meth:`check` every pattern and store its matcher (kept ones are reused).

        :raises InvalidPattern: for the first pattern whose evaluation could raise.
        """
        prepared = self.prepared
        reuse = self._reuse
        for pattern in patterns:
            if pattern not in prepared:
                compiled = reuse.get(pattern) or self._plain_matcher(pattern)
                if compiled is None:
                    self.check(pattern)
                    try:
                        compiled = self._compile(pattern)
                    except linear.Refused as error:
                        raise InvalidPattern(f"{self.name} pattern {pattern!r}: {error}") from None
                prepared[pattern] = compiled

    def matcher(self, pattern: str) -> Compiled:
        """The prepared matcher of ``pattern`` (prepared now, not stored, if it was not)."""
        found = self.prepared.get(pattern)
        return found if found is not None else self._compile(pattern)

    def match(self, key: str, pattern: str) -> bool:
        """pycasbin's ``fn(key, pattern)``; ``pattern`` must have passed :meth:`check`."""
        function, argument = self.matcher(pattern)
        return function(self.request_key(key), argument)

    def _plain_matcher(self, pattern: str) -> Compiled | None:
        """The matcher of a pattern that needs no regex (it can never raise), or ``None``."""
        name = self.name
        if name == "keyMatch":
            star = pattern.find("*")
            return (_equal, pattern) if star == -1 else (_starts, pattern[:star])
        if name == "regexMatch":
            return (_starts, pattern) if _SPECIAL.isdisjoint(pattern) else None
        if name in _CHAINS:
            found = usual(pattern) if name == "keyMatch2" else None
            if found is not None:
                return found
            tokens = chain(name, pattern)
            return compile_chain(tokens) if tokens is not None else None
        return None

    def _compile(self, pattern: str) -> Compiled:
        plain = self._plain_matcher(pattern)
        if plain is not None:
            return plain
        if self.name == "globMatch":
            return (_glob, _glob_matcher(pattern))
        # Regular expressions run on RE2 (linear time): see the linear module.
        source = pattern if self.name == "regexMatch" else self._regex(pattern)
        regex, matches = linear.compile_linear(source)
        if self.name == "keyMatch4":
            return (_key_match4, (regex, _KEY_MATCH4.findall(pattern)))
        return (_linear, matches)

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


def linear_builtins(functions: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """pycasbin's function map with its regex-based pattern functions running on RE2.

    pycasbin itself still answers some requests (models the index does not handle, values
    it cannot reproduce): with these it cannot backtrack either. Matchers are kept per pattern
    (a bounded number: patterns may come from requests).
    """
    replaced = dict(functions)
    for name in ("keyMatch2", "keyMatch3", "keyMatch4", "keyMatch5", "regexMatch"):
        if name in replaced:
            replaced[name] = _linear_builtin(PatternFunction(name, replaced[name]))
    return replaced


def _linear_builtin(function: PatternFunction) -> Callable[..., Any]:
    builtin = function._builtin
    matcher = functools.lru_cache(maxsize=1024)(function.matcher)

    def call(key: Any, pattern: Any) -> Any:
        if type(key) is not str or type(pattern) is not str:
            return builtin(key, pattern)  # pycasbin's own answer, or its own error
        test, argument = matcher(pattern)
        return test(function.request_key(key), argument)

    return call


#: the functions whose usual patterns are regex-free chains (keyMatch4 compares its groups)
_CHAINS = frozenset(("keyMatch2", "keyMatch3", "keyMatch5"))


def _equal(key: str, pattern: str) -> bool:
    return key == pattern


def _starts(key: str, text: str) -> bool:
    return key.startswith(text)


def _linear(key: str, matches: linear.Matcher) -> bool:
    return matches(key)


def _glob(key: str, matcher: Any) -> bool:
    return bool(matcher.match(key))


def _glob_matcher(pattern: str) -> Any:
    """pycasbin's ``glob_match`` rewriting, compiled once by wcmatch (which it calls per use)."""
    while pattern.startswith("*/"):
        pattern = pattern[1:]
    parts = ["**" if part == "**" else re.sub(r"\*{2,}", "*", part) for part in pattern.split("/")]
    pattern = "/".join(parts)
    if pattern.endswith("/**"):
        pattern = "{" + pattern[:-3] + "," + pattern + "}"
    return glob.compile(pattern, flags=glob.GLOBSTAR | glob.BRACE)


def _key_match4(key: str, argument: tuple[Any, list[str]]) -> bool:
    regex, tokens = argument
    found = linear.groups(regex, key)
    if found is None:
        return False
    values: dict[str, str | None] = {}
    for token, value in zip(tokens, found, strict=True):
        if values.setdefault(token, value) != value:
            return False
    return True


#: matchers whose argument is text every matching key starts with
PREFIXED: frozenset[Callable[..., bool]] = frozenset((_equal, _starts, *PREFIXED_CHAINS))


def _plain(body: str) -> bool:
    """Whether a rewritten keyMatch body is a sequence of atoms that always compiles."""
    return _PLAIN_BODY.fullmatch(body) is not None
