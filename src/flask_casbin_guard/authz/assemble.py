"""Assemble the indexed evaluator from a parsed pycasbin model.

The engine hands over pycasbin's ``Model`` (read through its public attributes, never imported
here), pycasbin's built-in functions and a factory for its ``simpleeval`` evaluator, so the
evaluator reuses pycasbin's own pieces wherever exactness depends on them: the sorting of
prioritised policies, the function map, the expression evaluator.
"""

from __future__ import annotations

import ast
import gc
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..store.csv import PolicyRow
from .index import IndexedPolicy
from .matcher import Unsupported, Vocabulary, parse_matcher
from .patterns import PatternFunction
from .roles import RoleGraph
from .scan import Delegate
from .segments import Compiled

#: builds one pycasbin ``SimpleEval`` over a function map
EvaluatorFactory = Callable[[dict[str, Callable[..., Any]]], Any]


def prepared_matchers(
    checked: Mapping[str, Mapping[str, Compiled]], earlier: IndexedPolicy | None
) -> dict[str, Mapping[str, Compiled]]:
    """Matchers the pattern check prepared, then those of the previous engine's index, by
    function: no pattern is prepared twice."""
    reuse: dict[str, Mapping[str, Compiled]] = dict(checked)
    for name, function in earlier.patterns.items() if earlier is not None else ():
        found = reuse.get(name)
        # A plain dict: a ChainMap's lookups cost a third of a 100,000-pattern build.
        reuse[name] = function.prepared if found is None else {**function.prepared, **found}
    return reuse


def build_index(
    model: Any,
    rows: Sequence[PolicyRow],
    graphs: Mapping[str, RoleGraph],
    *,
    builtins: Mapping[str, Callable[..., Any]],
    functions: Mapping[str, Callable[..., Any]],
    evaluator: EvaluatorFactory,
    reuse: Mapping[str, Mapping[str, Compiled]] | None = None,
) -> IndexedPolicy:
    """An :class:`IndexedPolicy` for ``model`` and ``rows``.

    :param graphs: the role graphs of :func:`role_graphs`.
    :param builtins: pycasbin's function map (``FunctionMap.load_function_map()``).
    :param functions: the custom matcher functions; they replace built-ins of the same name.
    :param reuse: matchers already prepared (by a previous engine, or the pattern check), by
        function: those patterns are not prepared again.
    :raises Unsupported: when the model or the policy is outside what the index reproduces.
    """
    if "m" not in model["m"]:
        raise Unsupported("no 'm' matcher")
    policy_tokens = list(model["p"]["p"].tokens)
    vocabulary = Vocabulary(
        request=list(model["r"]["r"].tokens),
        policy=policy_tokens,
        roles={name: graph.domains for name, graph in graphs.items()},
        patterns=frozenset(PatternFunction.NAMES - set(functions)),
    )
    matcher = model["m"]["m"].value
    plan = parse_matcher(matcher, vocabulary)
    # The map pycasbin evaluates with: built-ins, then custom functions, then g functions.
    names: dict[str, Callable[..., Any]] = {**builtins, **functions}
    names.update({name: _g_function(graph) for name, graph in graphs.items()})
    reuse = reuse or {}
    patterns = {
        name: PatternFunction(name, builtins[name], reuse=reuse.get(name))
        for name in vocabulary.patterns
    }
    reordered = _reordered(model)
    index = IndexedPolicy(
        plan,
        sorted_rules(model, rows),
        request_tokens=vocabulary.request,
        policy_tokens=policy_tokens,
        effect=model["e"]["e"].value,
        matcher=matcher,
        roles=graphs,
        patterns=patterns,
        evaluate=Evaluator(names, evaluator),
    )
    index.in_row_order = not reordered
    return index


def role_graphs(model: Any, rows: Sequence[PolicyRow]) -> dict[str, RoleGraph]:
    """Role graphs for every ``g`` ptype, or :class:`Unsupported` for pycasbin-only kinds."""
    if "g" not in model.keys():  # noqa: SIM118 - a casbin Model, not a dict
        if any(row.ptype.startswith("g") for row in rows):
            raise Unsupported("'g' rows without a role definition")
        return {}
    graphs = {}
    for ptype, assertion in model["g"].items():
        count = assertion.value.count("_")
        # Conditional (temporal) roles and multi-domain links have managers of their own.
        if assertion.params_tokens or len(assertion.tokens) not in (2, 3) or count not in (2, 3):
            raise Unsupported(f"role definition {ptype} = {assertion.value}")
        links = [row.values[:count] for row in rows if row.ptype == ptype]
        if any(len(values) < count for values in links):
            raise Unsupported(f"a {ptype} row has fewer values than its definition")
        graphs[ptype] = RoleGraph(links, domains=len(assertion.tokens) == 3)
    return graphs


def sorted_rules(model: Any, rows: Sequence[PolicyRow]) -> list[tuple[str, ...]]:
    """The ``p`` rules in the order pycasbin evaluates them (it sorts some models on load)."""
    known = set(model["p"]) | (set(model["g"]) if "g" in model.keys() else set())  # noqa: SIM118
    if not {row.ptype for row in rows} <= known:
        raise Unsupported("rows of a ptype the model does not define")
    if not _reordered(model):
        return [row.values for row in rows if row.ptype == "p"]
    for row in rows:
        model.model[row.ptype[0]][row.ptype].policy.append(row.values)
    # pycasbin's own sorting, in load_policy's order: exact by construction
    model.sort_policies_by_subject_hierarchy()
    model.sort_policies_by_priority()
    return [tuple(values) for values in model["p"]["p"].policy]


def _reordered(model: Any) -> bool:
    """Whether pycasbin sorts this model's ``p`` rules (by priority or subject hierarchy)."""
    subject_priority = model["e"]["e"].value == "subjectPriority(p_eft) || deny"
    return "p_priority" in model["p"]["p"].tokens or subject_priority


class Evaluator:
    """pycasbin's ``simpleeval`` evaluator, one instance per thread (it stores the names)."""

    def __init__(
        self, functions: Mapping[str, Callable[..., Any]], factory: EvaluatorFactory
    ) -> None:
        self._functions = functions
        self._factory = factory
        self._local = threading.local()

    def __call__(self, node: ast.expr, names: dict[str, Any]) -> Any:
        """The value of ``node`` with these names, as pycasbin computes it."""
        evaluator = getattr(self._local, "evaluator", None)
        if evaluator is None:
            evaluator = self._local.evaluator = self._factory(dict(self._functions))
        evaluator.names = names
        return evaluator._eval(node)


def _g_function(graph: RoleGraph) -> Callable[..., bool]:
    """pycasbin's ``generate_g_function`` over a role graph (no role created on lookup)."""

    def g(*args: Any) -> bool:
        name1, name2 = args[0], args[1]
        domain = str(args[2]) if len(args) > 2 else ""
        if type(name1) is not str or type(name2) is not str:
            raise Delegate  # pycasbin's roles are keyed by value: let it answer
        return graph.has_link(name1, name2, domain)

    return g


class paused_gc:
    """Suspend the cyclic garbage collector while a policy is indexed.

    Indexing 100k rules allocates a few hundred thousand containers, none of them garbage, and
    the collector's repeated passes over them cost about 40% of the build. Nested and
    concurrent builds share one pause; a collector the application disabled stays disabled.
    """

    _lock = threading.Lock()
    _depth = 0
    _resume = False

    def __enter__(self) -> None:
        with paused_gc._lock:
            if paused_gc._depth == 0:
                paused_gc._resume = gc.isenabled()
                gc.disable()
            paused_gc._depth += 1

    def __exit__(self, *exc: object) -> None:
        with paused_gc._lock:
            paused_gc._depth -= 1
            if paused_gc._depth == 0 and paused_gc._resume:
                gc.enable()
