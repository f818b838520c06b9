"""The Casbin engine: the only module that imports ``casbin``.

A :class:`PolicyEngine` is an immutable snapshot of one model and one policy. Reloading builds a
new engine off to the side and swaps one reference (:class:`EngineHolder`), so no decision ever
sees a half-loaded policy (pycasbin's in-place ``load_policy`` gives wrong denials while it runs).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import casbin
from casbin.persist.adapter import Adapter

from ..errors import PolicyError
from ..store.csv import PolicyRow

log = logging.getLogger("flask_casbin_guard.engine")

#: pycasbin's role managers stop searching after this many levels and silently deny.
MAX_ROLE_DEPTH = 10

#: decisions remembered per engine; an engine never changes, so its answers never go stale
DECISION_CACHE_SIZE = 16384

#: matcher functions whose answer depends on more than the request (the clock)
_IMPURE_FUNCTIONS = ("timeMatch",)

_CASBIN_LOGGERS = ("casbin", "casbin.enforcer", "casbin.policy", "casbin.role")
_construct_lock = threading.Lock()
# A logger outside the logging tree, disabled: pycasbin logs every decision through
# ``enforcer.logger``, subjects included, and the host app's logs are not the place for that.
_SILENT = logging.Logger("flask_casbin_guard.casbin-silenced")
_SILENT.disabled = True


class _RowsAdapter(Adapter):  # type: ignore[misc]
    """Feeds already-validated rows to pycasbin; nothing is re-parsed from text."""

    def __init__(self, rows: Sequence[PolicyRow]) -> None:
        self._rows = rows

    def load_policy(self, model: Any) -> None:
        for row in self._rows:
            model.model[row.ptype[0]][row.ptype].policy.append(list(row.values))


def parse_model(text: str, source: str) -> Any:
    """A pycasbin ``Model`` from model text, checked for the sections Casbin needs."""
    model = casbin.Model()
    try:
        model.load_model_from_text(text)
    except Exception as error:  # pycasbin raises bare exceptions of many kinds here
        raise PolicyError(f"invalid Casbin model {source}: {error}", original_error=error) from None
    for section in ("r", "p", "e", "m"):
        if section not in model.keys():  # noqa: SIM118 - a casbin Model, not a dict
            raise PolicyError(f"invalid Casbin model {source}: no [{_SECTIONS[section]}] section")
    return model


_SECTIONS = {
    "r": "request_definition",
    "p": "policy_definition",
    "e": "policy_effect",
    "m": "matchers",
}


def model_arities(model: Any) -> dict[str, int]:
    """How many values each ptype of ``model`` takes."""
    arities = {ptype: len(a.tokens) for ptype, a in model["p"].items()}
    if "g" in model.keys():  # noqa: SIM118 - a casbin Model, not a dict
        arities.update({ptype: a.value.count("_") for ptype, a in model["g"].items()})
    return arities


class PolicyEngine:
    """One model and one policy, ready to answer; never mutated after construction."""

    def __init__(
        self,
        model_text: str,
        rows: Sequence[PolicyRow],
        *,
        source: str = "<model>",
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.model_text = model_text
        model = parse_model(model_text, source)
        #: the request tokens in ``request_definition`` order (``("sub", "obj", "act")``)
        self.request_tokens: tuple[str, ...] = tuple(
            token.removeprefix("r_") for token in model["r"]["r"].tokens
        )
        self.arities = model_arities(model)
        #: the model has ``g = _, _``: role declarations can be checked
        self.has_roles = self.arities.get("g") == 2
        self.rows: tuple[PolicyRow, ...] = tuple(rows)
        grouping = [row.values for row in self.rows if row.ptype == "g"]
        _check_role_depth(grouping)
        #: names some ``g`` row grants: a login equal to one of them gets no Casbin rights
        self.roles: frozenset[str] = frozenset(values[1] for values in grouping)
        self._members: frozenset[str] = frozenset(values[0] for values in grouping)
        self._enforcer = _build_enforcer(model, self.rows, functions or {})
        matcher = model["m"]["m"].value
        #: whether decisions may be cached: not with custom or clock-dependent functions
        self.cacheable = not functions and not any(f in matcher for f in _IMPURE_FUNCTIONS)
        self._cached_explain = functools.lru_cache(maxsize=DECISION_CACHE_SIZE)(self._explain)
        # pycasbin parses the matcher with ast.parse on every evaluation, and CPython 3.11's
        # parser state is not safe across threads (spurious SystemError); its role manager
        # also mutates on lookup. One evaluation at a time per engine.
        self._lock = threading.Lock()

    def enforce(self, *rvals: Any) -> bool:
        """pycasbin's answer for the request values, in ``request_definition`` order.

        :raises PolicyError: when evaluation fails; the caller must deny, never allow.
        """
        return self.explain(*rvals)[0]

    def explain(self, *rvals: Any) -> tuple[bool, tuple[str, ...]]:
        """The decision and the deciding policy rule (empty when none matched)."""
        # Only plain strings are keys: ABAC objects may be unhashable or change under us.
        if self.cacheable and all(type(value) is str for value in rvals):
            return self._cached_explain(*rvals)
        return self._explain(*rvals)

    def _explain(self, *rvals: Any) -> tuple[bool, tuple[str, ...]]:
        try:
            with self._lock:
                allowed, rule = self._enforcer.enforce_ex(*rvals)
        except Exception as error:  # simpleeval, ipMatch, arity... anything is a failure
            raise PolicyError(
                f"policy evaluation failed: {type(error).__name__}", original_error=error
            ) from None
        return bool(allowed), tuple(rule)

    def has_role(self, user: str, role: str, domain: str | None = None) -> bool:
        """Whether ``user`` holds ``role`` through ``g`` links, transitively.

        :param domain: for models with ``g = _, _, _``: the domain of the links.
        """
        wanted = 2 if domain is None else 3
        if self.arities.get("g") != wanted or user not in self._members or role not in self.roles:
            # Asking pycasbin about an unknown name would create a role entry for it: memory
            # would grow with every unknown login or role.
            return False
        with self._lock:
            manager = self._enforcer.get_role_manager()
            return bool(manager.has_link(user, role, *([domain] if domain else [])))

    def policy(self, ptype: str | None = None) -> list[PolicyRow]:
        return [row for row in self.rows if ptype is None or row.ptype == ptype]


class EngineHolder:
    """The current engine of one app; replaced whole, never modified in place."""

    def __init__(self, engine: PolicyEngine) -> None:
        self._engine = engine
        self.generation = 0

    @property
    def engine(self) -> PolicyEngine:
        return self._engine

    def swap(self, engine: PolicyEngine) -> None:
        # One reference assignment: a request uses either the old or the new engine, whole.
        self._engine = engine
        self.generation += 1


def _build_enforcer(
    model: Any, rows: Sequence[PolicyRow], functions: Mapping[str, Callable[..., Any]]
) -> Any:
    # pycasbin logs the whole model and policy at INFO during its first construction and then
    # disables its loggers process-wide. Silence them for the construction only, then put back
    # whatever the host app had configured.
    with _construct_lock:
        loggers = [logging.getLogger(name) for name in _CASBIN_LOGGERS]
        saved = [logger.disabled for logger in loggers]
        for logger in loggers:
            logger.disabled = True
        try:
            enforcer = casbin.Enforcer(model, _RowsAdapter(rows))
        except Exception as error:
            raise PolicyError(f"cannot load the policy: {error}", original_error=error) from None
        finally:
            for logger, disabled in zip(loggers, saved, strict=True):
                logger.disabled = disabled
    enforcer.logger = _SILENT
    for name, function in functions.items():
        enforcer.add_function(name, function)
    return enforcer


def _check_role_depth(links: Iterable[tuple[str, ...]]) -> None:
    """Refuse cycles and chains deeper than pycasbin follows (it would deny silently)."""
    # One graph per domain (values beyond the first two): links never cross domains.
    graphs: dict[tuple[str, ...], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for values in links:
        graphs[tuple(values[2:])][values[0]].append(values[1])
    for graph in graphs.values():
        depth: dict[str, int] = {}
        for start in list(graph):
            _depth(start, graph, depth, set())


def _depth(node: str, graph: Mapping[str, list[str]], memo: dict[str, int], path: set[str]) -> int:
    if node in memo:
        return memo[node]
    if node in path:
        raise PolicyError(f"role cycle through {node!r} in the 'g' rows")
    if len(path) >= MAX_ROLE_DEPTH:
        raise PolicyError(
            f"role chain through {node!r} is deeper than pycasbin follows "
            f"({MAX_ROLE_DEPTH - 1} links); it would silently deny beyond that"
        )
    path.add(node)
    result = 1 + max((_depth(n, graph, memo, path) for n in graph.get(node, ())), default=-1)
    path.discard(node)
    if result >= MAX_ROLE_DEPTH:
        raise PolicyError(
            f"role chain from {node!r} is {result} links deep; pycasbin follows at most "
            f"{MAX_ROLE_DEPTH - 1} and would silently deny beyond that"
        )
    memo[node] = result
    return result
