"""What would make every Casbin decision fail, or stall, found before the first one.

pycasbin only finds an unregistered matcher function or an ``eval()`` rule that does not parse
when it evaluates the matcher: each request of every route decided by Casbin would then answer
503 while the rest of the app answers 200. A pattern that only Python's backtracking ``re`` can
run (:mod:`.linear`) could take exponential time on one crafted request: refused with its rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence

from ..errors import PolicyError
from ..store.csv import PolicyRow
from .index import IndexedPolicy
from .matcher import _EVAL, Unsupported, escape_assertion, parse_expression, replace_eval, rewrite
from .patterns import PatternFunction, Prepared
from .segments import Compiled

#: matchers the pattern check prepared, by function (``None``: not checked yet)
Checked = dict[str, Prepared] | None
#: the pattern functions that build regular expressions (keyMatch and globMatch do not)
_REGEX_FUNCTIONS = ("keyMatch2", "keyMatch3", "keyMatch4", "keyMatch5", "regexMatch")


def unknown_functions(matcher: str, known: Iterable[str]) -> tuple[str, ...]:
    """Functions the matcher calls that nobody provides (``myMatch(r.obj, p.obj)``)."""
    names = _EVAL.findall(matcher)
    text = replace_eval(matcher, ["True"] * len(names))
    try:
        expression = parse_expression(rewrite(text))
    except Unsupported:
        return ()  # refused elsewhere (check_model) with its own message
    known = set(known)
    called = {
        node.func.id
        for node in ast.walk(expression)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return tuple(sorted(called - known))


def check_eval_rules(matcher: str, tokens: Sequence[str], rows: Iterable[PolicyRow]) -> None:
    """Refuse a ``p`` rule whose text ``eval()`` pastes into the matcher but does not parse.

    :param tokens: the ``p`` policy tokens (``p_sub``...), in definition order.
    :raises PolicyError: naming the rule and its text.
    """
    columns = [tokens.index(name) for name in _EVAL.findall(matcher) if name in tokens]
    if not columns:
        return
    seen: set[str] = set()
    for row in rows:
        if row.ptype != "p":
            continue
        for column in columns:
            text = row.values[column] if column < len(row.values) else ""
            if text in seen:
                continue
            try:
                parse_expression(rewrite(f"({escape_assertion(text)})"))
            except Unsupported as error:
                shown = ", ".join(row.values)
                raise PolicyError(
                    f"policy rule 'p, {shown}': its eval() text {text!r} is not an expression "
                    f"({error})"
                ) from None
            seen.add(text)


def check_rows(
    matcher: str,
    tokens: Sequence[str],
    custom: Iterable[str],
    rows: Sequence[PolicyRow],
    span: tuple[int, int, int] | None = None,
    previous: IndexedPolicy | None = None,
) -> dict[str, Prepared]:
    """:func:`check_eval_rules` on every row, :func:`check_pattern_rules` on those that changed.

    :param span: :func:`~.delta.changed_span` from rows that passed already (``None``: all).
    :param previous: a previous engine's index: the patterns it prepared passed already.
    """
    check_eval_rules(matcher, tokens, rows)
    changed = rows if span is None else rows[span[0] : span[2]]
    known = previous.matchers if previous is not None else None
    return check_pattern_rules(matcher, tokens, custom, changed, known)


def check_pattern_rules(
    matcher: str,
    tokens: Sequence[str],
    custom: Iterable[str],
    rows: Iterable[PolicyRow],
    known: Mapping[str, Mapping[str, Compiled]] | None = None,
) -> dict[str, Prepared]:
    """Refuse a pattern the matcher (or an ``eval()`` text) would run with backtracking.

    :param custom: names of custom functions: they replace pycasbin's and are not checked.
    :param known: matchers prepared before, by function: taken over, not checked again.
    :returns: the matchers prepared on the way, by function: the index takes them over.
    :raises PolicyError: naming the rule (or the matcher) and the pattern.
    """
    known = known or {}
    functions = {
        name: PatternFunction(name, _unused, reuse=known.get(name))
        for name in _REGEX_FUNCTIONS
        if name not in custom
    }
    columns, constants = _pattern_uses(matcher, tokens, functions)
    for name, text in constants:
        problem = functions[name].accept(text)
        if problem:
            raise PolicyError(
                f"the matcher's {name} pattern {text!r} cannot run in linear time: {problem}"
            )
    evals = [tokens.index(name) for name in _EVAL.findall(matcher) if name in tokens]
    prepared = {name: function.prepared for name, function in functions.items()}
    rows = [row for row in rows if row.ptype == "p"]
    for name, column in columns:
        # Each distinct pattern once (a policy may hold 100,000 rows): the row only on refusal.
        function = functions[name]
        for text in dict.fromkeys(row.values[column] for row in rows if column < len(row.values)):
            problem = function.accept(text)
            if problem:
                found = next(row for row in rows if row.values[column : column + 1] == (text,))
                raise _refused(found, name, text, problem)
    for row in rows if evals else ():
        for column in evals:
            if column < len(row.values):
                pasted = f"({escape_assertion(row.values[column])})"
                for name, text in _pattern_uses(pasted, tokens, functions)[1]:
                    problem = functions[name].accept(text)
                    if problem:
                        raise _refused(row, name, text, problem)
    return prepared


def _refused(row: PolicyRow, name: str, text: str, problem: str) -> PolicyError:
    shown = ", ".join(repr(value)[:60] for value in row.values)
    return PolicyError(
        f"policy rule p, {shown}: its {name} pattern {text[:60]!r} cannot run in linear time: "
        f"{problem}"
    )


def _pattern_uses(
    expression: str, tokens: Sequence[str], functions: dict[str, PatternFunction]
) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """``(function, p column)`` and ``(function, constant)`` of the patterns it matches with."""
    names = _EVAL.findall(expression)
    text = replace_eval(expression, ["True"] * len(names))
    try:
        parsed = parse_expression(rewrite(text))
    except Unsupported:
        return [], []  # refused elsewhere, with its own message
    columns: list[tuple[str, int]] = []
    constants: list[tuple[str, str]] = []
    for node in ast.walk(parsed):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in functions
            and len(node.args) == 2
        ):
            continue
        pattern = node.args[1]
        if isinstance(pattern, ast.Name) and pattern.id in tokens:
            columns.append((node.func.id, tokens.index(pattern.id)))
        elif isinstance(pattern, ast.Constant) and type(pattern.value) is str:
            constants.append((node.func.id, pattern.value))
    return columns, constants


def _unused(key: str, pattern: str) -> bool:
    raise AssertionError("accept() never calls pycasbin's function")  # pragma: no cover
