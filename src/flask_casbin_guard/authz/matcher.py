"""Recognise the matcher shapes the indexed evaluator understands.

The matcher text is rewritten exactly as pycasbin does before its ``simpleeval`` evaluation
(``&&`` -> ``and``, ``||`` -> ``or``, ``!`` -> ``not``; ``eval(p.x)`` replaced by the rule text)
and parsed with :mod:`ast`. Its top level must be ``C`` or ``R1 or ... or C or ... Rn``, where the
``R`` parts depend on the request only and ``C`` is a conjunction of terms:

- :class:`EqTerm` ``r.a == p.b`` (either order), :class:`RoleTerm` ``g(r.a, p.b[, dom])`` and
  :class:`MatchTerm` ``keyMatch2(r.a, p.b)`` (and the other pattern functions) narrow the rules
  to candidates through hash maps;
- :class:`SafeTerm` is any other combination of those on strings (``p.sub == '*'``,
  ``!g(...)``...): evaluated per candidate, it always yields a ``bool`` and never raises;
- :class:`RequestTerm` depends on the request only (``r.obj.Owner == r.sub``): evaluated once;
- :class:`GenericTerm` is anything else (custom functions, ``eval()``, ``ipMatch``...),
  evaluated per candidate by pycasbin's own ``simpleeval`` evaluator.

Anything else raises :class:`Unsupported`, and the engine keeps pycasbin's linear scan.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

_EVAL = re.compile(r"\beval\((?P<rule>[^)]*)\)")  # pycasbin util.eval_reg
_PLACEHOLDER = "__guard_eval_{}__"
#: simpleeval keeps a comprehension counter per evaluator instance, across pycasbin's rules
_STATEFUL = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)


class Unsupported(Exception):
    """The matcher is outside the shapes the indexed evaluator reproduces exactly."""


@dataclass(frozen=True, slots=True)
class Value:
    """Where a string argument comes from: a request token, a policy column or a constant."""

    kind: str  # "r", "p" or "const"
    index: int = -1
    text: str = ""


@dataclass(frozen=True, slots=True)
class EqTerm:
    """``r.a == p.b``: the rules whose column equals a request value (or a constant)."""

    node: ast.expr
    column: int
    value: Value


@dataclass(frozen=True, slots=True)
class RoleTerm:
    """``g(r.a, p.b[, dom])``: the rules whose column is a role the user holds."""

    node: ast.expr
    function: str
    user: Value
    column: int
    domain: Value | None


@dataclass(frozen=True, slots=True)
class MatchTerm:
    """``fn(r.a, p.b)`` for a pycasbin pattern function: the rules whose pattern matches."""

    node: ast.expr
    function: str
    key: Value
    column: int


@dataclass(frozen=True, slots=True)
class SafeTerm:
    """A bool-valued combination of string comparisons, roles and patterns; never raises."""

    node: ast.expr


@dataclass(frozen=True, slots=True)
class RequestTerm:
    """Depends on the request only: one evaluation per request serves every rule."""

    node: ast.expr


@dataclass(frozen=True, slots=True)
class GenericTerm:
    """Evaluated per candidate rule by ``simpleeval``; may raise or return anything."""

    node: ast.expr
    #: whether it contains an ``eval()`` of a policy column (its text then differs per rule)
    evals: bool = False


Term = EqTerm | RoleTerm | MatchTerm | SafeTerm | RequestTerm | GenericTerm
KEY_TERMS = (EqTerm, RoleTerm, MatchTerm)


@dataclass(frozen=True)
class Vocabulary:
    """The names a matcher may use, from the model and the function map."""

    #: request tokens in order, as the matcher sees them (``r_sub``)
    request: Sequence[str]
    #: policy tokens in order (``p_sub``)
    policy: Sequence[str]
    #: role functions (``g``, ``g2``...) -> whether their role definition has a domain
    roles: Mapping[str, bool] = field(default_factory=dict)
    #: pycasbin pattern functions not replaced by a custom function of the same name
    patterns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MatcherPlan:
    """A parsed matcher: request-only ``or`` parts around one conjunction of terms."""

    expression: ast.expr
    before: tuple[ast.expr, ...]
    terms: tuple[Term, ...]
    after: tuple[ast.expr, ...]
    #: policy columns whose text ``eval()`` inserts, in pycasbin's order
    eval_columns: tuple[int, ...]
    vocabulary: Vocabulary


def rewrite(expression: str) -> str:
    """pycasbin's textual rewriting before parsing (``CoreEnforcer._get_expression``)."""
    expression = expression.replace("&&", "and")
    expression = expression.replace("||", "or")
    return re.sub(r"!(?!=)", "not ", expression)


def escape_assertion(text: str) -> str:
    """pycasbin's ``util.escape_assertion``: ``p.x`` -> ``p_x`` (first suffix found only)."""
    for letter in "pr":
        found = re.search(rf"\b{letter}(\d*)\.", text)
        if found is not None:
            suffix = found.group(1)
            text = re.sub(rf"\b{letter}{suffix}\.", f"{letter}{suffix}_", text)
    return text


def replace_eval(expression: str, rules: list[str]) -> str:
    """pycasbin's ``util.replace_eval``: each ``eval(...)`` becomes ``(rule)``, in order."""
    position = 0
    found = _EVAL.search(expression, position)
    while found:
        rule = "(" + rules.pop(0) + ")"
        expression = expression[: found.start()] + rule + expression[found.end() :]
        position = found.start() + len(rule)
        found = _EVAL.search(expression, position)
    return expression


def parse_expression(text: str) -> ast.expr:
    """Parse rewritten matcher text as pycasbin does, refusing what it would half-read."""
    try:
        tree = ast.parse(text.strip())
    except (SyntaxError, ValueError) as error:
        raise Unsupported(f"the matcher does not parse: {error}") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        raise Unsupported("the matcher is not a single expression")
    return tree.body[0].value


def matcher_problem(matcher: str, tokens: set[str]) -> str:
    """Why pycasbin would fail every evaluation of ``matcher`` (escaped), or ``""``.

    :param tokens: the ``r_*``/``p_*`` names the model defines.
    """
    try:
        expression = parse_expression(rewrite(matcher))
    except Unsupported as error:
        return str(error)
    calls = {id(node.func) for node in ast.walk(expression) if isinstance(node, ast.Call)}
    names = [n.id for n in ast.walk(expression) if isinstance(n, ast.Name) and id(n) not in calls]
    for name in names:
        if name not in tokens and _TOKEN_NAME.fullmatch(name):
            return f"{name.replace('_', '.', 1)!r} is not defined"
    return ""


_TOKEN_NAME = re.compile(r"[rp]\d*_\w+")


def parse_matcher(matcher: str, vocabulary: Vocabulary) -> MatcherPlan:
    """Recognise ``matcher`` (pycasbin's escaped ``m`` value) or raise :class:`Unsupported`."""
    names = _EVAL.findall(matcher)
    policy = list(vocabulary.policy)
    request = list(vocabulary.request)
    if len(set(policy)) != len(policy) or len(set(request)) != len(request):
        raise Unsupported("a token appears twice in a definition")  # pycasbin keeps the last
    if any(name not in policy for name in names):
        raise Unsupported("eval() of something other than a policy column")
    template = replace_eval(matcher, [_PLACEHOLDER.format(i) for i in range(len(names))])
    expression = parse_expression(rewrite(template))
    if any(isinstance(node, _STATEFUL) for node in ast.walk(expression)):
        raise Unsupported("comprehensions and lambdas in the matcher")
    classify = _Classifier(vocabulary)
    parts = _operands(expression, ast.Or)
    dependent = [i for i, part in enumerate(parts) if classify.on_policy(part)]
    if len(dependent) != 1:
        # No policy part (ABAC: the same answer for every rule), or several: then the whole
        # matcher is one term, evaluated per rule, with no index to narrow the rules.
        whole = classify.term(expression)
        return MatcherPlan(
            expression, (), (whole,), (), tuple(policy.index(n) for n in names), vocabulary
        )
    at = dependent[0]
    conjunction = parts[at]
    nodes = _operands(conjunction, ast.And)
    return MatcherPlan(
        expression=expression,
        before=tuple(parts[:at]),
        terms=tuple(classify.term(node) for node in nodes),
        after=tuple(parts[at + 1 :]),
        eval_columns=tuple(policy.index(name) for name in names),
        vocabulary=vocabulary,
    )


def is_safe(node: ast.expr, vocabulary: Vocabulary) -> bool:
    """Whether ``node`` yields a bool without raising whenever the request is strings."""
    return _Classifier(vocabulary).safe(node)


def string_leaves(node: ast.expr, vocabulary: Vocabulary) -> Iterator[Value]:
    """The request tokens, policy columns and constants ``node`` reads as strings."""
    classify = _Classifier(vocabulary)
    for child in ast.walk(node):
        if isinstance(child, ast.Name | ast.Constant):
            found = classify.value(child)
            if found is not None:
                yield found


def eval_terms(plan: MatcherPlan, matcher: str, texts: Sequence[str]) -> tuple[ast.expr, ...]:
    """The per-rule nodes of the ``eval()`` terms, for one rule's column texts.

    pycasbin pastes the rule text into the matcher and parses the result. That is only
    term-by-term equivalent if the text stays inside its parentheses: checked by comparing the
    parsed whole with the template where each placeholder is replaced by the parsed rule.
    """
    rules = [escape_assertion(text) for text in texts]
    whole = parse_expression(rewrite(replace_eval(matcher, list(rules))))
    inserted = [parse_expression(rewrite("(" + rule + ")")) for rule in rules]
    expected = _Substitute(inserted).visit(copy.deepcopy(plan.expression))
    if ast.dump(whole) != ast.dump(expected):
        raise Unsupported("an eval() rule changes the structure of the matcher")
    parts = _operands(whole, ast.Or) if plan.before or plan.after else [whole]
    conjunction = parts[len(plan.before)]
    nodes = _operands(conjunction, ast.And) if len(plan.terms) > 1 else [conjunction]
    return tuple(
        node
        for node, term in zip(nodes, plan.terms, strict=True)
        if isinstance(term, GenericTerm) and term.evals
    )


class _Substitute(ast.NodeTransformer):
    def __init__(self, inserted: list[ast.expr]) -> None:
        self._inserted = inserted

    def visit_Name(self, node: ast.Name) -> ast.expr:
        for index, rule in enumerate(self._inserted):
            if node.id == _PLACEHOLDER.format(index):
                return rule
        return node


class _Classifier:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.request = list(vocabulary.request)
        self.policy = list(vocabulary.policy)
        self.roles = vocabulary.roles
        self.patterns = vocabulary.patterns

    def on_policy(self, node: ast.expr) -> bool:
        return any(
            isinstance(n, ast.Name) and (n.id in self.policy or n.id.startswith("__guard_eval_"))
            for n in ast.walk(node)
        )

    def term(self, node: ast.expr) -> Term:
        if not self.on_policy(node):
            return RequestTerm(node)
        if not self.safe(node):
            evals = any(
                isinstance(n, ast.Name) and n.id.startswith("__guard_eval_") for n in ast.walk(node)
            )
            return GenericTerm(node, evals)
        return self.key(node) or SafeTerm(node)

    def key(self, node: ast.expr) -> Term | None:
        if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.Eq):
            left, right = self.value(node.left), self.value(node.comparators[0])
            if left and right and right.kind == "p" and left.kind != "p":
                return EqTerm(node, right.index, left)
            if left and right and left.kind == "p" and right.kind != "p":
                return EqTerm(node, left.index, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [self.value(arg) for arg in node.args]
            first, second = args[0], args[1]
            if not first or not second or first.kind == "p" or second.kind != "p":
                return None
            if node.func.id in self.roles:
                domain = args[2] if len(args) > 2 else None
                if domain and domain.kind == "p":
                    return None
                return RoleTerm(node, node.func.id, first, second.index, domain)
            if first.kind == "r":
                return MatchTerm(node, node.func.id, first, second.index)
        return None

    def value(self, node: ast.expr) -> Value | None:
        """A string leaf: a request token, a policy token or a string constant."""
        if isinstance(node, ast.Name):
            if node.id in self.request:
                return Value("r", self.request.index(node.id))
            if node.id in self.policy:
                return Value("p", self.policy.index(node.id))
        if isinstance(node, ast.Constant) and type(node.value) is str:
            return Value("const", text=node.value)
        return None

    def safe(self, node: ast.expr) -> bool:
        """Whether ``node`` yields a bool without raising whenever the request is strings."""
        if isinstance(node, ast.BoolOp):
            return all(self.safe(value) for value in node.values)
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.op, ast.Not) and self.safe(node.operand)
        if isinstance(node, ast.Constant):
            return type(node.value) is bool
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1 or self.value(node.left) is None:
                return False
            right = node.comparators[0]
            if isinstance(node.ops[0], ast.Eq | ast.NotEq):
                return self.value(right) is not None
            if isinstance(node.ops[0], ast.In | ast.NotIn):
                return self.value(right) is not None or _string_collection(right)
            return False
        if isinstance(node, ast.Call):
            if node.keywords or not isinstance(node.func, ast.Name):
                return False
            args = [self.value(arg) for arg in node.args]
            if any(arg is None for arg in args):
                return False
            if node.func.id in self.roles:
                return 2 <= len(args) <= 3
            # A pattern from the request could be an invalid regex: only policy columns
            # (checked at load) and constants (checked when compiled) are safe.
            return (
                node.func.id in self.patterns
                and len(args) == 2
                and args[1] is not None
                and args[1].kind != "r"
            )
        return False


def _string_collection(node: ast.expr) -> bool:
    return isinstance(node, ast.List | ast.Tuple | ast.Set) and all(
        isinstance(item, ast.Constant) and type(item.value) is str for item in node.elts
    )


def _operands(node: ast.expr, op: type[ast.boolop]) -> list[ast.expr]:
    """The operands of ``node`` if it is an ``op`` (``and``/``or``), else ``node`` alone."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, op):
        return list(node.values)
    return [node]


def eval_nodes(
    plan: MatcherPlan, matcher: str, rules: Sequence[tuple[str, ...]]
) -> list[tuple[ast.expr, ...]]:
    """For every rule, its pasted ``eval()`` term nodes (see :func:`eval_terms`)."""
    # pycasbin parses the pasted text per rule and request; parse once per distinct text.
    parsed: dict[tuple[str, ...], tuple[ast.expr, ...]] = {}
    nodes = []
    for rule in rules:
        texts = tuple(rule[column] for column in plan.eval_columns)
        found = parsed.get(texts)
        if found is None:
            found = parsed[texts] = eval_terms(plan, matcher, texts)
        nodes.append(found)
    return nodes
