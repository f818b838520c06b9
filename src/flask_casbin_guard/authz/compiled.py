"""Safe matcher terms compiled to Python closures.

A *safe* term (see :mod:`.matcher`) combines string comparisons, role lookups and pattern
functions; on string inputs it always yields a ``bool`` and never raises, so plain Python
closures reproduce what ``simpleeval`` computes for it, at a fraction of the cost. Terms are
compiled once per engine, against its role graphs and pattern functions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from .matcher import (
    EqTerm,
    GenericTerm,
    MatcherPlan,
    RequestTerm,
    RoleTerm,
    Term,
    Unsupported,
    Value,
    Vocabulary,
    is_safe,
    string_leaves,
)
from .patterns import InvalidPattern, PatternFunction
from .roles import RoleGraph

#: ``(request values, rule values) -> value``
Fn = Callable[[Sequence[Any], Sequence[str]], Any]
#: ``request values -> one string``
StringFn = Callable[[Sequence[Any]], Any]


@dataclass(frozen=True, slots=True)
class CompiledRequest:
    """A request-only node compiled to a closure, valid when ``strings`` hold strings."""

    fn: Fn
    strings: tuple[int, ...]


@dataclass
class CompiledTerms:
    """Closures for the safe terms of a plan, by term position or request-only node."""

    #: term position -> closure, for every term that is neither request-only nor generic
    safe: dict[int, Fn] = field(default_factory=dict)
    #: ``id(node)`` -> closure, for the request-only nodes that are safe
    request: dict[int, CompiledRequest] = field(default_factory=dict)
    #: term position -> slot in a rule's tuple of pasted ``eval()`` nodes
    eval_slot: dict[int, int] = field(default_factory=dict)


def compile_safe(
    plan: MatcherPlan,
    roles: Mapping[str, RoleGraph],
    patterns: Mapping[str, PatternFunction],
) -> CompiledTerms:
    """Compile every safe term and safe request-only node of ``plan``."""
    builder = _Builder(plan.vocabulary, roles, patterns)
    compiled = CompiledTerms()
    requests = list(plan.before) + list(plan.after)
    for position, term in enumerate(plan.terms):
        if isinstance(term, RequestTerm):
            requests.append(term.node)
        elif isinstance(term, GenericTerm):
            if term.evals:
                compiled.eval_slot[position] = len(compiled.eval_slot)
        else:
            compiled.safe[position] = builder.build(term.node)
    for node in requests:
        if is_safe(node, plan.vocabulary):
            strings = tuple(
                sorted({v.index for v in string_leaves(node, plan.vocabulary) if v.kind == "r"})
            )
            compiled.request[id(node)] = CompiledRequest(builder.build(node), strings)
    return compiled


def strings_used(plan: MatcherPlan) -> tuple[int, ...]:
    """Request positions that the safe terms read, and must therefore be strings."""
    found: set[int] = set()
    for term in plan.terms:
        if not isinstance(term, RequestTerm | GenericTerm):
            found.update(
                v.index for v in string_leaves(term.node, plan.vocabulary) if v.kind == "r"
            )
    return tuple(sorted(found))


def check_columns(
    plan: MatcherPlan,
    rules: Sequence[tuple[str, ...]],
    patterns: Mapping[str, PatternFunction],
) -> None:
    """Check and prepare every pattern the safe terms will evaluate: none may ever raise.

    :raises Unsupported: naming the first pattern pycasbin would fail on.
    """
    nodes = [t.node for t in plan.terms if not isinstance(t, RequestTerm | GenericTerm)]
    nodes += [
        node
        for node in [*plan.before, *plan.after]
        + [t.node for t in plan.terms if isinstance(t, RequestTerm)]
        if is_safe(node, plan.vocabulary)
    ]
    classify = _Builder(plan.vocabulary, {}, patterns)
    uses: set[tuple[str, int]] = set()
    for node in nodes:
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                continue
            function = patterns.get(call.func.id)
            if function is None or len(call.args) != 2:
                continue
            pattern = classify.leaf(call.args[1])
            try:
                if pattern.kind == "const":
                    function.prepare((pattern.text,))
                elif pattern.kind == "p":
                    uses.add((call.func.id, pattern.index))
            except InvalidPattern as error:
                raise Unsupported(str(error)) from None
    for name, column in uses:
        function = patterns[name]
        try:
            function.prepare({rule[column] for rule in rules})
        except InvalidPattern as error:
            raise Unsupported(f"a policy rule has an invalid pattern: {error}") from None


class _Builder:
    def __init__(
        self,
        vocabulary: Vocabulary,
        roles: Mapping[str, RoleGraph],
        patterns: Mapping[str, PatternFunction],
    ) -> None:
        self.request = list(vocabulary.request)
        self.policy = list(vocabulary.policy)
        self.roles = roles
        self.patterns = patterns

    def leaf(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Name):
            if node.id in self.request:
                return Value("r", self.request.index(node.id))
            return Value("p", self.policy.index(node.id))
        assert isinstance(node, ast.Constant) and type(node.value) is str  # noqa: S101
        return Value("const", text=node.value)

    def getter(self, node: ast.expr) -> Fn:
        value = self.leaf(node)
        index = value.index
        if value.kind == "r":
            return lambda r, p: r[index]
        if value.kind == "p":
            return lambda r, p: p[index]
        text = value.text
        return lambda r, p: text

    def build(self, node: ast.expr) -> Fn:
        """A closure computing what ``simpleeval`` computes for the safe ``node``."""
        if isinstance(node, ast.BoolOp):
            parts = [self.build(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda r, p: all(part(r, p) for part in parts)
            return lambda r, p: any(part(r, p) for part in parts)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand)
            return lambda r, p: not operand(r, p)
        if isinstance(node, ast.Constant):
            constant = node.value
            return lambda r, p: constant
        if isinstance(node, ast.Compare):
            return self._compare(node)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # noqa: S101
        args = [self.getter(arg) for arg in node.args]
        name = node.func.id
        if name in self.roles:
            graph = self.roles[name]
            user, role = args[0], args[1]
            if len(args) == 2:
                return lambda r, p: graph.has_link(user(r, p), role(r, p), "")
            domain = args[2]
            return lambda r, p: graph.has_link(user(r, p), role(r, p), str(domain(r, p)))
        function = self.patterns[name]
        key, pattern = args
        source = self.leaf(node.args[1])
        if source.kind == "const":
            # Prepared at load (check_columns): nothing per request but the call.
            test, argument = function.matcher(source.text)
            wanted = function.request_key
            return lambda r, p: test(wanted(key(r, p)), argument)
        match = function.match
        return lambda r, p: match(key(r, p), pattern(r, p))

    def _compare(self, node: ast.Compare) -> Fn:
        left = self.getter(node.left)
        operator = node.ops[0]
        right_node = node.comparators[0]
        if isinstance(right_node, ast.List | ast.Tuple | ast.Set):
            items = tuple(cast(ast.Constant, item).value for item in right_node.elts)
            if isinstance(operator, ast.In):
                return lambda r, p: left(r, p) in items
            return lambda r, p: left(r, p) not in items
        right = self.getter(right_node)
        if isinstance(operator, ast.Eq):
            return lambda r, p: left(r, p) == right(r, p)
        if isinstance(operator, ast.NotEq):
            return lambda r, p: left(r, p) != right(r, p)
        if isinstance(operator, ast.In):
            return lambda r, p: left(r, p) in right(r, p)
        return lambda r, p: left(r, p) not in right(r, p)


def key_lookup(term: Term, roles: Mapping[str, RoleGraph]) -> Callable[[Sequence[Any]], Any]:
    """Request -> the values the term's column may take for a candidate."""
    if isinstance(term, EqTerm):
        source = term.value
        if source.kind == "const":
            fixed = (source.text,)
            return lambda rvals: fixed
        return lambda rvals: (rvals[source.index],)
    assert isinstance(term, RoleTerm)  # noqa: S101 - only EqTerm and RoleTerm are keys
    graph = roles[term.function]
    user: StringFn = _request_getter(term.user)
    domain = term.domain
    roles_of = graph.roles
    # The user itself first: g(x, x) holds for any x.
    if domain is None:
        return lambda rvals: (name := user(rvals), *roles_of(name, ""))
    where: StringFn = _request_getter(domain)
    return lambda rvals: (name := user(rvals), *roles_of(name, str(where(rvals))))


def _request_getter(source: Value) -> StringFn:
    if source.kind == "const":
        text = source.text
        return lambda rvals: text
    index = source.index
    return lambda rvals: rvals[index]
