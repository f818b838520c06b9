"""The indexed evaluator: pycasbin's decisions without scanning every policy rule.

pycasbin evaluates the matcher once per rule, in policy order, and stops at the first rule that
settles the effect. :class:`IndexedPolicy` gives the same answers by visiting only *candidate*
rules: at load it files the rules in a hash map keyed by the columns the matcher compares with
``==`` or ``g()``, each bucket split by literal pattern (patterns that need a regex sit in a
small map per bucket). A request looks up its buckets, sorts the candidates back into policy
order and evaluates them as pycasbin would (:mod:`.scan`), early exit included.

A reload after a small change derives the next index from this one (:meth:`derived`): the
changed rules' buckets are copied and refiled, removed rules leave an empty slot, and the
patterns already prepared are shared; a full build compacts the slots again.

Skipping a rule is exact only when pycasbin's evaluation of it yields ``False`` without raising:
the index terms used must come before any term that could raise or return a non-bool. Requests
that break this (an attribute missing on an ABAC object, say) scan every rule instead; values the
evaluator cannot reproduce exactly raise :class:`Delegate` so the engine asks pycasbin itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, product
from operator import itemgetter
from typing import Any

from .buckets import Change, file_patterns, file_rules, match_patterns, refile
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
from .segments import Compiled

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
        _check_rules(rules, policy_tokens)
        #: the rules in pycasbin's order; ``()`` marks the slot of a rule a reload removed
        self.rules: list[tuple[str, ...]] = list(rules)
        self._plan = plan
        self._matcher = matcher
        self._patterns = patterns
        self._r_tokens = tuple(request_tokens)
        self._p_tokens = tuple(policy_tokens)
        self._evaluate = evaluate
        self._decisive = EFFECTS[effect]
        self._allow_and_deny = (
            effect == "some(where (p_eft == allow)) && !some(where (p_eft == deny))"
        )
        self._deny_override = effect == "!some(where (p_eft == deny))"
        self._has_eval = bool(plan.eval_columns)
        eft = self._p_tokens.index("p_eft") if "p_eft" in self._p_tokens else -1
        self._kind_of: Callable[[tuple[str, ...]], int] = (
            (lambda rule: _KINDS.get(rule[eft], INDETERMINATE)) if eft >= 0 else _allow
        )
        self._kinds = bytes(map(self._kind_of, rules)) if eft >= 0 else bytes(len(rules))
        check_columns(plan, rules, patterns)
        #: request positions the compiled terms read as strings
        self._strings = strings_used(plan)
        self._build_index(plan, rules, roles, patterns)
        self._program = Program(
            plan=plan,
            rules=self.rules,
            terms=compile_safe(plan, roles, patterns),
            evaluate=evaluate,
            request_tokens=self._r_tokens,
            policy_tokens=self._p_tokens,
            eval_nodes=eval_nodes(plan, matcher, rules) if self._has_eval else [],
            used=self._used,
        )
        #: whether the rules keep the order of the policy's ``p`` rows (no priority sorting)
        self.in_row_order = True
        #: empty slots, and the slot of each rule in policy order (``None``: slot = position)
        self._holes = 0
        self._slots: list[int] | None = None
        self._live: list[int] | None = None
        #: rules changed by derivations since the last full build (see derived)
        self._churn = 0

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
        #: nothing to evaluate per request either: every candidate matches as found
        self._direct = self._trivial and not plan.before and not plan.after
        self._last_used = max(used, default=-1)
        # One flat map: key -> rule numbers (ascending), or -> PatternBucket when a pattern term
        # splits the bucket. A key is a value, a tuple of values, or "" (no keys).
        columns_used = [term.column for _, term in keys]
        self._key_of: Callable[[tuple[str, ...]], Any] = (
            itemgetter(*columns_used) if columns_used else (lambda rule: "")
        )
        if self._pattern is None or partition is None:
            self._text_of: Callable[[tuple[str, ...]], str] = lambda rule: ""
            self._buckets: dict[Any, Any] = file_rules(map(self._key_of, rules))
            return
        self._text_of = itemgetter(partition[1].column)
        self._buckets = file_patterns(
            map(self._key_of, rules), map(self._text_of, rules), self._pattern
        )

    def derived(
        self, start: int, removed: int, added: Sequence[tuple[str, ...]]
    ) -> IndexedPolicy | None:
        """This index with ``removed`` rules from the ``start``-th replaced by ``added``.

        Positions count rules in policy order. Copies only what the change touches; ``None``
        when only a full build gives the answer (rules inserted before others), or should:
        once the rules changed since the last full build pass 1/8 of them, a full build
        compacts the empty slots and lets go of the matchers of patterns no longer used.

        :raises Unsupported: as the constructor would for the added rules.
        """
        live = len(self.rules) - self._holes
        if len(added) > removed and start + removed != live:
            return None  # a rule between two others: no slot for it
        holes = self._holes + max(0, removed - len(added))
        churn = self._churn + max(removed, len(added))
        if live - removed + len(added) == 0 or churn * 8 > len(self.rules):
            return None
        _check_rules(added, self._p_tokens)
        check_columns(self._plan, added, self._patterns)
        slots = self._slots if self._slots is not None else range(len(self.rules))
        rules = list(self.rules)
        kinds = bytearray(self._kinds)
        evals = list(self._program.eval_nodes)
        freed = list(slots[start : start + removed])
        taken = freed[: len(added)] + list(range(len(rules), len(rules) + len(added) - removed))
        changes: list[Change] = []
        for slot in freed:
            changes.append((self._key_of(rules[slot]), self._text_of(rules[slot]), slot, False))
            rules[slot] = ()
        for slot, rule in zip(taken, added, strict=True):
            nodes = eval_nodes(self._plan, self._matcher, [rule])[0] if self._has_eval else ()
            if slot == len(rules):
                rules.append(rule)
                kinds.append(self._kind_of(rule))
                evals.append(nodes)
            else:
                rules[slot] = rule
                kinds[slot] = self._kind_of(rule)
                if self._has_eval:
                    evals[slot] = nodes
            changes.append((self._key_of(rule), self._text_of(rule), slot, True))
        result = object.__new__(IndexedPolicy)
        result.__dict__.update(self.__dict__)
        result.rules = rules
        result._kinds = bytes(kinds)
        result._buckets = refile(self._buckets, changes, self._pattern)
        result._program = dataclasses.replace(self._program, rules=rules, eval_nodes=evals)
        result._holes = holes
        result._churn = churn
        result._live = None
        if holes or self._slots is not None:
            result._slots = [*slots[:start], *taken, *slots[start + removed :]]
        return result

    @property
    def patterns(self) -> Mapping[str, PatternFunction]:
        """The pattern functions, with every pattern of the policy prepared."""
        return self._patterns

    @property
    def matchers(self) -> dict[str, Mapping[str, Compiled]]:
        """The matchers prepared, by function: their patterns passed every check."""
        return {name: function.prepared for name, function in self._patterns.items()}

    def _every(self) -> Sequence[int]:
        """Every rule's slot, in policy order."""
        if not self._holes:
            return range(len(self.rules))
        if self._live is None:
            # Computed on first need (rare: request-only parts that settle every rule).
            self._live = [index for index, rule in enumerate(self.rules) if rule]
        return self._live

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
        if len(self.rules) == self._holes:
            return self._empty(rvals)
        if self._direct:
            return self._walk(self._candidates(rvals), None)
        scan = Scan(self._program, rvals)
        for node in self._plan.before:
            value = scan.request(node)
            if value:  # every rule takes this value, whatever the policy part says
                return self._walk(self._every(), scan, constant=value)
        tail_ok = scan.tail()
        if not tail_ok or not scan.usable(self._last_used):
            return self._walk(self._every(), scan, skip=False)
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
        elif len(lookups) == 2:
            keys = product(lookups[0](rvals), lookups[1](rvals))
        else:
            keys = product(*(lookup(rvals) for lookup in lookups))
        found: list[Any] = [bucket for key in keys if (bucket := buckets.get(key)) is not None]
        if not found:
            return []
        if self._partition is None:
            if len(found) == 1:
                only: list[int] = found[0]
                return only
            merged = [index for bucket in found for index in bucket]
            merged.sort()
            return merged
        pattern = self._pattern
        assert pattern is not None  # noqa: S101 - set together with the partition
        key = rvals[self._partition[1].key.index]
        return match_patterns(found, key, pattern, pattern.prepared)

    def _walk(
        self,
        candidates: Sequence[int] | range,
        scan: Scan | None,
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
                value = scan.value(index, skip) if scan is not None else True
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


_KINDS = {"allow": ALLOW, "deny": DENY}


def _allow(rule: tuple[str, ...]) -> int:
    return ALLOW  # rules without p_eft allow


def _check_rules(rules: Sequence[tuple[str, ...]], policy_tokens: Sequence[str]) -> None:
    # pycasbin raises "invalid policy size" on reaching such a rule: let it.
    if {len(rule) for rule in rules} - {len(policy_tokens)} or not {
        type(value) for value in chain.from_iterable(rules)
    } <= {str}:
        raise Unsupported("a policy rule has the wrong number of values (or a non-string)")
