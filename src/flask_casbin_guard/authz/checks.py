"""What would make every Casbin decision fail, found before the first one.

pycasbin only finds an unregistered matcher function or an ``eval()`` rule that does not parse
when it evaluates the matcher: each request of every route decided by Casbin would then answer
503 while the rest of the app answers 200.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from ..errors import PolicyError
from ..store.csv import PolicyRow
from .matcher import _EVAL, Unsupported, escape_assertion, parse_expression, replace_eval, rewrite


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
