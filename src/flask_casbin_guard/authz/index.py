"""The indexed evaluator: pycasbin's decisions without scanning every policy rule.

pycasbin evaluates the matcher once per rule, in policy order, and stops at the first rule that
settles the effect. :class:`IndexedPolicy` gives the same answers by visiting only *candidate*
rules: at load it files the rules in a hash map keyed by the columns the matcher compares with
``==`` or ``g()``, each bucket split by literal pattern (patterns that need a regex sit in a
small map per bucket). A request looks up its buckets, sorts the candidates back into policy
order and evaluates them as pycasbin would (:mod:`.scan`), early exit included.

Skipping a rule is exact only when pycasbin's evaluation of it yields ``False`` without raising:
the index terms used must come before any term that could raise or return a non-bool. Requests
that break this (an attribute missing on an ABAC object, say) scan every rule instead; values the
evaluator cannot reproduce exactly raise :class:`Delegate` so the engine asks pycasbin itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain, product
from operator import itemgetter
from typing import Any, cast

from .compiled import check_columns, compile_safe, key_lookup, strings_used
from .matcher import (
    EqTerm,
    GenericTerm,
    MatcherPlan,
    MatchTerm,
    RoleTerm,
    Unsupported,
    eval_nodes,
)
from .patterns import PatternFunction
from .roles import RoleGraph
from .scan import Delegate, Evaluate, MatcherError, Program, Scan, matched

__all__ = ["EFFECTS", "Delegate", "IndexedPolicy", "MatcherError"]

ALLOW, INDETERMINATE, DENY = 0, 1, 2

#: pycasbin's five effects (escaped as in the model) -> rule kinds that stop the scan
EFFECTS: dict[str, frozenset[int]] = {
    "some(where (p_eft == allow))": frozenset((ALLOW,)),
    "!some(where (p_eft == deny))": frozenset((DENY,)),
    "some(where (p_eft == allow)) && !some(where (p_eft == deny))": frozenset((DENY,)),
    "priority(p_eft) || deny": frozenset((ALLOW, DENY)),
    "subjectPriority(p_eft) || deny": frozenset((ALLOW, DENY)),
}


class IndexedPolicy:
    """One policy's rules filed for lookup; immutable once built, safe for concurrent use.

    :param plan: the recognised matcher.
    :param rules: the ``p`` rules in pycasbin's order (after its priority sorting).
    :param effect: the model's policy effect, escaped (``some(where (p_eft == allow))``).
    :param matcher: the matcher text pycasbin keeps (needed to paste ``eval()`` rules).
    :param roles: role graphs by function name (``g``, ``g2``).
    :param patterns: pattern functions by name.
    :param evaluate: pycasbin's ``simpleeval`` evaluation of a node.
    :raises Unsupported: when a rule makes exact indexing impossible (a bad pattern...).
    """

    def __init__(
        self,
        plan: MatcherPlan,
        rules: Sequence[tuple[str, ...]],
        *,
        request_tokens: Sequence[str],
        policy_tokens: Sequence[str],
        effect: str,
        matcher: str,
        roles: Mapping[str, RoleGraph],
        patterns: Mapping[str, PatternFunction],
        evaluate: Evaluate,
    ) -> None:
        # pycasbin raises "invalid policy size" on reaching such a rule: let it.
        if {len(rule) for rule in rules} - {len(policy_tokens)} or not {
            type(value) for value in chain.from_iterable(rules)
        } <= {str}:
            raise Unsupported("a policy rule has the wrong number of values (or a non-string)")
        self.rules = rules
        self._plan = plan
        self._r_tokens = tuple(request_tokens)
        self._p_tokens = tuple(policy_tokens)
        self._evaluate = evaluate
        self._decisive = EFFECTS[effect]
        self._allow_and_deny = (
            effect == "some(where (p_eft == allow)) && !some(where (p_eft == deny))"
        )
        self._deny_override = effect == "!some(where (p_eft == deny))"
        self._has_eval = bool(plan.eval_columns)
        self._kinds = bytes(len(rules))  # ALLOW: rules without p_eft allow
        if "p_eft" in self._p_tokens:
            eft = self._p_tokens.index("p_eft")
            kinds = {"allow": ALLOW, "deny": DENY}
            self._kinds = bytes(kinds.get(rule[eft], INDETERMINATE) for rule in rules)
        check_columns(plan, rules, patterns)
        #: request positions the compiled terms read as strings
        self._strings = strings_used(plan)
        self._build_index(plan, rules, roles, patterns)
        self._program = Program(
            plan=plan,
            rules=rules,
            terms=compile_safe(plan, roles, patterns),
            evaluate=evaluate,
            request_tokens=self._r_tokens,
            policy_tokens=self._p_tokens,
            eval_nodes=eval_nodes(plan, matcher, rules) if self._has_eval else [],
            used=self._used,
        )

    # -- building ---------------------------------------------------------------------------

    def _build_index(
        self,
        plan: MatcherPlan,
        rules: Sequence[tuple[str, ...]],
        roles: Mapping[str, RoleGraph],
        patterns: Mapping[str, PatternFunction],
    ) -> None:
        first_generic = next(
            (i for i, t in enumerate(plan.terms) if isinstance(t, GenericTerm)), len(plan.terms)
        )
        keys: list[tuple[int, EqTerm | RoleTerm]] = []
        partition: tuple[int, MatchTerm] | None = None
        columns: set[int] = set()
        for position, term in enumerate(plan.terms[:first_generic]):
            if isinstance(term, EqTerm | RoleTerm) and term.column not in columns:
                keys.append((position, term))
                columns.add(term.column)
            elif isinstance(term, MatchTerm) and partition is None:
                partition = (position, term)
        if partition is not None and partition[1].column in columns:
            partition = None
        #: whether some term narrows the rules (else every request visits each of them)
        self.indexed = bool(keys or partition)
        self._key_lookups = [key_lookup(term, roles) for _, term in keys]
        self._partition = partition
        self._pattern = patterns[partition[1].function] if partition else None
        used = [position for position, _ in keys] + ([partition[0]] if partition else [])
        #: terms known true for every candidate: not evaluated again
        self._used = frozenset(used)
        #: every term is an index term: each candidate matches, nothing to evaluate
        self._trivial = len(self._used) == len(plan.terms)
        self._last_used = max(used, default=-1)
        # One flat map: key -> rule indices (ascending), or -> (literal map, pattern map) when a
        # pattern term splits the bucket. A key is a value, a tuple of values, or "" (no keys).
        columns_used = [term.column for _, term in keys]
        key_of: Callable[[tuple[str, ...]], Any] = (
            itemgetter(*columns_used) if columns_used else (lambda rule: "")
        )
        if self._pattern is None or partition is None:
            groups: dict[Any, list[int]] = {}
            for index, key in enumerate(map(key_of, rules)):
                found = groups.get(key)
                if found is None:
                    groups[key] = [index]
                else:
                    found.append(index)
            self._buckets: dict[Any, Any] = groups
            return
        literal = self._pattern.literal
        plain: dict[str, int] = {}  # pattern -> 0 (literal) or 1 (needs matching), memoised
        split: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
        text_of = itemgetter(partition[1].column)
        for index, rule in enumerate(rules):
            key = key_of(rule)
            bucket = split.get(key)
            if bucket is None:
                bucket = split[key] = ({}, {})
            text = text_of(rule)
            side = plain.get(text)
            if side is None:
                side = plain[text] = 0 if literal(text) else 1
            # Mostly one rule per pattern: keep the bare index, a list only when several.
            found = bucket[side].get(text)
            if found is None:
                bucket[side][text] = index
            elif type(found) is int:
                bucket[side][text] = [found, index]
            else:
                found.append(index)
        self._buckets = split

    # -- deciding ---------------------------------------------------------------------------

    def decide(self, rvals: Sequence[Any]) -> tuple[bool, int]:
        """pycasbin's decision and the index of the rule it reports (-1: none).

        :raises Delegate: when pycasbin must answer this request itself.
        :raises Exception: whatever pycasbin would raise for this request.
        """
        if len(rvals) != len(self._r_tokens):
            raise MatcherError("invalid request size")
        for position in self._strings:
            if type(rvals[position]) is not str:
                raise Delegate
        if not self.rules:
            return self._empty(rvals)
        scan = Scan(self._program, rvals)
        for node in self._plan.before:
            value = scan.request(node)
            if value:  # every rule takes this value, whatever the policy part says
                return self._walk(range(len(self.rules)), scan, constant=value)
        tail_ok = scan.tail()
        if not tail_ok or not scan.usable(self._last_used):
            return self._walk(range(len(self.rules)), scan, skip=False)
        if scan.all_false:
            return self._walk((), scan)
        return self._walk(self._candidates(rvals), scan)

    def _candidates(self, rvals: Sequence[Any]) -> list[int]:
        """The rules the index terms allow for this request, in policy order."""
        lookups = self._key_lookups
        buckets = self._buckets
        if not lookups:
            keys: Any = ("",)
        elif len(lookups) == 1:
            keys = lookups[0](rvals)
        else:
            keys = product(*(lookup(rvals) for lookup in lookups))
        found: list[Any] = [bucket for key in keys if (bucket := buckets.get(key)) is not None]
        if not found:
            return []
        if self._partition is None:
            if len(found) == 1:
                return cast(list[int], found[0])
            merged = [index for bucket in found for index in bucket]
            merged.sort()
            return merged
        pattern = self._pattern
        assert pattern is not None  # noqa: S101 - set together with the partition
        key = rvals[self._partition[1].key.index]
        texts = pattern.lookup_keys(key)
        match = pattern.match
        merged = []
        for literal, patterned in found:
            for text in texts:
                hits = literal.get(text)
                if hits is not None:
                    if type(hits) is int:
                        merged.append(hits)
                    else:
                        merged.extend(hits)
            for text, hits in patterned.items():
                if match(key, text):
                    if type(hits) is int:
                        merged.append(hits)
                    else:
                        merged.extend(hits)
        if len(merged) > 1:
            merged.sort()
        return merged

    def _walk(
        self,
        candidates: Sequence[int] | range,
        scan: Scan,
        *,
        skip: bool = True,
        constant: Any = None,
    ) -> tuple[bool, int]:
        kinds = self._kinds
        decisive = self._decisive
        allowed = False
        last = -1
        trivial = skip and self._trivial
        for index in candidates:
            if constant is not None:
                value = constant
            elif trivial:
                value = True
            else:
                value = scan.value(index, skip)
            if not matched(value):
                continue
            kind = kinds[index]
            last = index
            if kind in decisive:
                return (kind == ALLOW, index)
            allowed = allowed or kind == ALLOW
        if self._deny_override:
            return (True, last)
        return (self._allow_and_deny and allowed, last)

    def _empty(self, rvals: Sequence[Any]) -> tuple[bool, int]:
        # pycasbin evaluates the matcher once, with every policy value empty, and only looks
        # at its truthiness; eval() has no rule to paste and fails.
        if self._has_eval:
            raise MatcherError(
                "please make sure rule exists in policy when using eval() in matcher"
            )
        names = dict(zip(self._r_tokens, rvals, strict=True))
        names.update(dict.fromkeys(self._p_tokens, ""))
        matched = bool(self._evaluate(self._plan.expression, names))
        if self._deny_override:
            return (True, -1)
        return (matched, -1)
