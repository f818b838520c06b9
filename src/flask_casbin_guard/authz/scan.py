"""One request's evaluation of candidate rules, as pycasbin evaluates each rule.

pycasbin evaluates the whole matcher per rule. Parts that depend on the request only are the
same for every rule: :class:`Scan` computes them once, keeps any error they raise, and uses
value or error exactly where pycasbin's short-circuit evaluation would reach them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .compiled import CompiledTerms
from .matcher import GenericTerm, MatcherPlan, RequestTerm

#: ``simpleeval`` evaluation of one node with pycasbin's names and functions
Evaluate = Callable[[ast.expr, dict[str, Any]], Any]


class Delegate(Exception):
    """The request holds a value only pycasbin itself answers exactly (not a plain string)."""


class MatcherError(RuntimeError):
    """pycasbin would raise here too (bad request size, non-boolean matcher result...)."""


@dataclass(frozen=True)
class Program:
    """What evaluating a rule needs, fixed at load: shared by every request."""

    plan: MatcherPlan
    rules: Sequence[tuple[str, ...]]
    terms: CompiledTerms
    evaluate: Evaluate
    request_tokens: tuple[str, ...]
    policy_tokens: tuple[str, ...]
    #: per rule, its pasted ``eval()`` term nodes (empty without ``eval()``)
    eval_nodes: list[tuple[ast.expr, ...]]
    #: positions of the terms the index already proved true for every candidate
    used: frozenset[int]


class Scan:
    """The per-request state: request-only outcomes, computed once, used where pycasbin would."""

    __slots__ = ("_tail", "all_false", "names", "outcomes", "program", "rvals")

    def __init__(self, program: Program, rvals: Sequence[Any]) -> None:
        self.program = program
        self.rvals = rvals
        self.names: dict[str, Any] | None = None
        self.outcomes: dict[int, tuple[BaseException | None, Any]] = {}
        self.all_false = False
        self._tail: tuple[BaseException | None, Any] | None = None

    def request(self, node: ast.expr) -> Any:
        """The value of a request-only node, or its error raised, as at its place in a rule."""
        error, value = self._outcome(node)
        if error is not None:
            raise error
        return value

    def _outcome(self, node: ast.expr) -> tuple[BaseException | None, Any]:
        key = id(node)
        found = self.outcomes.get(key)
        if found is None:
            compiled = self.program.terms.request.get(key)
            try:
                if compiled is not None and all(
                    type(self.rvals[i]) is str for i in compiled.strings
                ):
                    found = (None, compiled.fn(self.rvals, ()))
                else:
                    found = (None, self.program.evaluate(node, self._request_names()))
            except Delegate:
                raise
            except Exception as error:  # kept: pycasbin raises it only where it evaluates
                found = (error, None)
            self.outcomes[key] = found
        return found

    def _request_names(self) -> dict[str, Any]:
        return dict(zip(self.program.request_tokens, self.rvals, strict=True))

    def tail(self) -> bool:
        """Evaluate the ``or`` parts after the policy part; False if rules must all be seen."""
        after = self.program.plan.after
        if not after:
            return True
        outcome: tuple[BaseException | None, Any] = (None, False)
        for node in after:
            outcome = self._outcome(node)
            if outcome[0] is not None or outcome[1]:
                break
        self._tail = outcome
        error, value = outcome
        # A falsy bool or 0.0 leaves every unmatched rule indeterminate, as skipping does.
        return error is None and not value and isinstance(value, bool | float)

    def usable(self, last_used: int) -> bool:
        """Whether the index terms come before any request-only term that is not a bool."""
        for position, term in enumerate(self.program.plan.terms):
            if isinstance(term, GenericTerm):
                return True  # index terms all come before it (see _build_index)
            if not isinstance(term, RequestTerm):
                continue
            error, value = self._outcome(term.node)
            if error is not None or type(value) is not bool:
                return position > last_used
            if not value:
                self.all_false = True  # every rule stops here with False
                return True
        return True

    def value(self, index: int, skip: bool) -> Any:
        """pycasbin's matcher value for rule ``index``."""
        program = self.program
        rule = program.rules[index]
        value: Any = True
        terms = program.terms
        for position, term in enumerate(program.plan.terms):
            if skip and position in program.used:
                value = True
            elif isinstance(term, RequestTerm):
                value = self.request(term.node)
            elif isinstance(term, GenericTerm):
                node = term.node
                if term.evals:
                    node = program.eval_nodes[index][terms.eval_slot[position]]
                value = program.evaluate(node, self._rule_names(rule))
            else:
                value = terms.safe[position](self.rvals, rule)
            if not value:
                break
        if value or self._tail is None:
            return value
        error, tail = self._tail
        if error is not None:
            raise error
        return tail

    def _rule_names(self, rule: tuple[str, ...]) -> dict[str, Any]:
        if self.names is None:
            self.names = self._request_names()
        names = dict(self.names)
        names.update(zip(self.program.policy_tokens, rule, strict=True))
        return names


def matched(value: Any) -> bool:
    """pycasbin's reading of a matcher value: bool, or float (0 is no match); else it raises."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return not value == 0  # noqa: SIM201 - NaN counts as a match, as in pycasbin
    raise MatcherError("matcher result should be bool, int or float")
