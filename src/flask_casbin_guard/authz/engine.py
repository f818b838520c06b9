"""The Casbin engine: the only module that imports ``casbin``.

A :class:`PolicyEngine` is an immutable snapshot of one model and one policy. Reloading builds a
new engine off to the side and swaps one reference (:class:`EngineHolder`), so no decision ever
sees a half-loaded policy (pycasbin's in-place ``load_policy`` gives wrong denials while it runs).

Decisions go through the indexed evaluator (:mod:`.index`) when it recognises the model: it
gives pycasbin's answers while visiting only candidate rules. Other models, and the rare request
the evaluator cannot reproduce exactly, go to a pycasbin ``Enforcer``.

Built with ``previous=`` (the engine it replaces), an engine refiles only the ``p`` rows that
changed (:mod:`.delta`), or else builds anew with the pattern matchers ``previous`` prepared.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import casbin
from casbin.core_enforcer import EnforceContext
from casbin.effect import get_effector
from casbin.model import FunctionMap
from casbin.persist.adapter import Adapter
from casbin.rbac.default_role_manager import DomainManager, RoleManager
from casbin.util.expression import SimpleEval

from ..errors import PolicyError
from ..memo import BoundedMemo
from ..store.csv import PolicyRow
from .assemble import build_index, paused_gc, prepared_matchers, role_graphs
from .bounded import bound
from .checks import Checked, check_rows, unknown_functions
from .delta import changed_span, derive_index
from .holder import EngineHolder
from .index import IndexedPolicy
from .matcher import Unsupported, matcher_problem
from .patterns import linear_builtins
from .roles import MAX_ROLE_DEPTH, RoleGraph, check_role_depth
from .scan import Delegate

__all__ = [
    "MAX_ROLE_DEPTH",
    "EngineHolder",
    "PolicyEngine",
    "check_model",
    "model_arities",
    "parse_model",
]

log = logging.getLogger("flask_casbin_guard.engine")

#: decisions remembered per engine; an engine never changes, so its answers never go stale
DECISION_CACHE_SIZE = 16384
#: bytes they may hold: 16,384 one-megabyte object values would pin 16 GiB
DECISION_CACHE_BYTES = 16 << 20

#: matcher functions whose answer depends on more than the request (the clock)
_IMPURE_FUNCTIONS = ("timeMatch",)

#: what an engine derived from a previous one takes over unchanged (see PolicyEngine)
_KEPT = (
    *("request_tokens", "arities", "policy_tokens", "has_roles", "roles", "_members"),
    *("cacheable", "_graphs", "_check_rows", "unknown_functions"),
)

_CASBIN_LOGGERS = ("casbin", "casbin.enforcer", "casbin.policy", "casbin.role")
_construct_lock = threading.Lock()
# A logger outside the logging tree, disabled: pycasbin logs every decision through
# ``enforcer.logger``, subjects included, and the host app's logs are not the place for that.
_SILENT = logging.Logger("flask_casbin_guard.casbin-silenced")
_SILENT.disabled = True


class _RowsAdapter(Adapter):
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
        # pycasbin quotes the bad line: escaped and cut short, it cannot forge log lines.
        shown = str(error) if str(error).isprintable() else repr(str(error))
        raise PolicyError(
            f"invalid Casbin model {source}: {shown[:200]}", original_error=error
        ) from None
    for section in ("r", "p", "e", "m"):
        if section not in model.keys():  # noqa: SIM118 - a casbin Model, not a dict
            raise PolicyError(f"invalid Casbin model {source}: no [{_SECTIONS[section]}] section")
    return model


def check_model(model: Any, source: str) -> None:
    """Refuse what pycasbin would only find at the first decision, and then fail every one.

    Unknown *functions* are not refused: ``guard.add_function`` may register them later.

    :raises PolicyError: naming the model and the problem.
    """
    problem = _model_problem(model)
    if problem:
        raise PolicyError(f"invalid Casbin model {source}: {problem}")


def _model_problem(model: Any) -> str:
    for key in ("r", "p", "e", "m"):
        if key not in model[key]:
            return f"no '{key} = ...' in [{_SECTIONS[key]}]"
    try:
        get_effector(model["e"]["e"].value)
    except Exception as error:  # pycasbin raises a bare RuntimeError
        return f"[policy_effect]: {error}"
    for ptype, assertion in model["g"].items() if "g" in model.keys() else ():  # noqa: SIM118
        if assertion.value.count("_") < 2:
            return f"role definition {ptype!r} needs at least two '_'"
    tokens = {t for kind in "rp" for a in model[kind].values() for t in a.tokens}
    for name, assertion in model["m"].items():
        problem = matcher_problem(assertion.value, tokens)
        if problem:
            return f"matcher {name!r}: {problem}"
    return ""


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
    """One model and one policy, ready to answer; never mutated after construction.

    :param model_text: the Casbin model (``model.conf`` text).
    :param rows: the policy, ``p`` and ``g`` rows of any ptype the model defines.
    :param source: names the model in errors and logs.
    :param functions: custom matcher functions, by the name the matcher calls them.
    :param cache_size: decisions remembered (LRU); 0 turns the cache off.
    :param cache_bytes: bytes the remembered decisions (their request values) may hold.
    :param fast: use the indexed evaluator when the model allows it (``False``: always pycasbin).
    :param previous: the engine this one replaces: what did not change is taken from it.
    """

    def __init__(
        self,
        model_text: str,
        rows: Sequence[PolicyRow],
        *,
        source: str = "<model>",
        functions: Mapping[str, Callable[..., Any]] | None = None,
        cache_size: int = DECISION_CACHE_SIZE,
        cache_bytes: int = DECISION_CACHE_BYTES,
        fast: bool = True,
        previous: PolicyEngine | None = None,
    ) -> None:
        self.model_text = model_text
        self._source = source
        self._functions = dict(functions or {})
        self.rows: tuple[PolicyRow, ...] = tuple(rows)
        # pycasbin parses the matcher with ast.parse on every evaluation, and CPython 3.11's
        # parser state is not safe across threads (spurious SystemError); its role manager
        # also mutates on lookup. One pycasbin evaluation at a time per engine.
        self._lock = threading.Lock()
        self._reference: Any = None
        self._index: IndexedPolicy | None = None
        derived, old = None, previous if fast else None
        checked: Checked = None
        if old is not None and (old.model_text, old._functions) == (model_text, self._functions):
            # As a full build would, before anything else (patterns: of the rows that changed)
            checked = old._check_rows(self.rows, changed_span(old.rows, self.rows), old._index)
            derived = derive_index(old._index, old.rows, self.rows)
        if previous is not None and derived is not None:
            for name in _KEPT:  # same model, same roles: only the index changed
                setattr(self, name, getattr(previous, name))
            self.reason, self.fast, self._index = "", True, derived
        else:
            self._build(fast, previous, checked)
        self._cached_explain: Callable[..., tuple[bool, tuple[str, ...]]] = self._explain
        if cache_size and cache_bytes:
            self._cached_explain = BoundedMemo(self._explain, cache_size, cache_bytes)

    def _build(self, fast: bool, previous: PolicyEngine | None, checked: Checked) -> None:
        model = parse_model(self.model_text, self._source)
        #: the request tokens in ``request_definition`` order (``("sub", "obj", "act")``)
        self.request_tokens: tuple[str, ...] = tuple(
            token.removeprefix("r_") for token in model["r"]["r"].tokens
        )
        self.arities = model_arities(model)
        #: each ``p`` type's tokens without their prefix (``{"p": ("sub", "dom", "obj", "act")}``)
        self.policy_tokens: dict[str, tuple[str, ...]] = {
            ptype: tuple(token.removeprefix(f"{ptype}_") for token in assertion.tokens)
            for ptype, assertion in model["p"].items()
        }
        #: the model has ``g = _, _``: role declarations can be checked
        self.has_roles = self.arities.get("g") == 2
        grouping = [row.values for row in self.rows if row.ptype == "g"]
        with paused_gc():
            check_role_depth(grouping)
        #: names some ``g`` row grants (account creation refuses them as logins)
        self.roles: frozenset[str] = frozenset(values[1] for values in grouping)
        self._members: frozenset[str] = frozenset(values[0] for values in grouping)
        matcher = model["m"]["m"].value
        tokens, custom = model["p"]["p"].tokens, set(self._functions)
        self._check_rows = functools.partial(check_rows, matcher, tokens, custom)
        earlier = previous._index if previous is not None else None
        checked = self._check_rows(self.rows, None, earlier) if checked is None else checked
        builtins = linear_builtins(FunctionMap.load_function_map().get_functions())
        #: functions the matcher calls that nobody registered: every decision would fail
        self.unknown_functions = unknown_functions(
            matcher, [*builtins, *self._functions, *self.arities]
        )
        #: whether decisions may be cached: not with custom or clock-dependent functions
        self.cacheable = not self._functions and not any(f in matcher for f in _IMPURE_FUNCTIONS)
        self._graphs: dict[str, RoleGraph] = {}
        #: why the indexed evaluator is not used ("" when it is)
        self.reason = "disabled by the caller" if not fast else ""
        try:
            get_effector(model["e"]["e"].value)
        except Exception as error:  # pycasbin raises a bare RuntimeError
            raise PolicyError(f"cannot load the policy: {error}", original_error=error) from None
        try:
            with paused_gc():
                self._graphs = role_graphs(model, self.rows)
                if fast:
                    self._index = build_index(
                        model,
                        self.rows,
                        self._graphs,
                        builtins=builtins,
                        functions=self._functions,
                        evaluator=lambda names: SimpleEval("", names),
                        reuse=prepared_matchers(checked, earlier),
                    )
        except Unsupported as error:
            self.reason = self.reason or str(error)
        except Exception as error:  # pycasbin's sorting, say: its Enforcer below says the same
            self.reason = f"cannot index the policy ({type(error).__name__}: {error})"
        #: whether decisions use the indexed evaluator
        self.fast = self._index is not None
        if self._index is not None and not self._index.indexed:
            log.info(
                "Casbin model %s: no term of the matcher narrows the rules; every decision "
                "evaluates each of the %d rules",
                self._source,
                len(self._index.rules),
            )
        if not self.fast:
            if fast:
                log.warning(
                    "Casbin model %s: %s; every decision will scan the whole policy (pycasbin)",
                    self._source,
                    self.reason,
                )
            self._reference = _build_enforcer(
                self.model_text, self._source, self.rows, self._functions
            )

    def enforce(self, *rvals: Any) -> bool:
        """pycasbin's answer for the request values, in ``request_definition`` order.

        :raises PolicyError: when evaluation fails; the caller must deny, never allow.
        """
        return self.explain(*rvals)[0]

    def explain(self, *rvals: Any) -> tuple[bool, tuple[str, ...]]:
        """The decision and the deciding policy rule (empty when none matched).

        The rule is the one pycasbin's ``enforce_ex`` reports: the last rule that matched
        before the effect was settled.
        """
        # Only plain strings are keys: ABAC objects may be unhashable or change under us.
        if self.cacheable and all(type(value) is str for value in rvals):
            return self._cached_explain(*rvals)
        return self._explain(*rvals)

    def _explain(self, *rvals: Any) -> tuple[bool, tuple[str, ...]]:
        index = self._index
        if index is not None and not (rvals and isinstance(rvals[0], EnforceContext)):
            try:
                allowed, position = index.decide(rvals)
            except Delegate:
                pass  # a value only pycasbin itself answers exactly
            except Exception as error:  # whatever pycasbin would have raised
                raise PolicyError(
                    f"policy evaluation failed: {type(error).__name__}", original_error=error
                ) from None
            else:
                return allowed, (tuple(index.rules[position]) if position >= 0 else ())
        return self._pycasbin_explain(rvals)

    def _pycasbin_explain(self, rvals: Sequence[Any]) -> tuple[bool, tuple[str, ...]]:
        try:
            enforcer = self._enforcer
            with self._lock:
                allowed, rule = enforcer.enforce_ex(*rvals)
        except PolicyError:
            raise
        except Exception as error:  # simpleeval, ipMatch, arity... anything is a failure
            raise PolicyError(
                f"policy evaluation failed: {type(error).__name__}", original_error=error
            ) from None
        return bool(allowed), tuple(rule)

    @property
    def _enforcer(self) -> Any:
        """The pycasbin ``Enforcer``: built at load for fallback models, else on first need."""
        if self._reference is None:
            with _construct_lock:
                if self._reference is None:
                    self._reference = _build_enforcer(
                        self.model_text, self._source, self.rows, self._functions, locked=True
                    )
        return self._reference

    def has_role(self, user: str, role: str, domain: str | None = None) -> bool:
        """Whether ``role`` is among ``user``'s roles through ``g`` links, transitively.

        The answer is whether pycasbin's ``get_implicit_roles_for_user`` lists ``role``: never
        for ``user == role``. (The matcher's ``g(x, x)`` does hold; that is ``enforce``.) A
        login that merely equals a role's name must not pass a role declaration: an identity
        provider's user called ``admin`` is not the ``admin`` role.

        :param domain: for models with ``g = _, _, _``: the domain of the links.
        """
        wanted = 2 if domain is None else 3
        if self.arities.get("g") != wanted or user == role:
            return False
        if user not in self._members or role not in self.roles:
            # Only names from the policy are looked up: answering an unknown login or role
            # must not store anything for it.
            return False
        graph = self._graphs.get("g")
        if graph is not None:
            return graph.has_link(user, role, domain or "")
        with self._lock:
            manager = self._enforcer.get_role_manager()
            return bool(manager.has_link(user, role, *([domain] if domain else [])))

    def policy(self, ptype: str | None = None) -> list[PolicyRow]:
        """The policy rows, all of them or those of one ptype, in policy order."""
        return [row for row in self.rows if ptype is None or row.ptype == ptype]


def _build_enforcer(
    model_text: str,
    source: str,
    rows: Sequence[PolicyRow],
    functions: Mapping[str, Callable[..., Any]],
    *,
    locked: bool = False,
) -> Any:
    # pycasbin logs the whole model and policy at INFO during its first construction and then
    # disables its loggers process-wide. Silence them for the construction only, then put back
    # whatever the host app had configured.
    # ``locked``: the caller already holds _construct_lock (the lazy build in _enforcer).
    with contextlib.nullcontext() if locked else _construct_lock:
        loggers = [logging.getLogger(name) for name in _CASBIN_LOGGERS]
        saved = [logger.disabled for logger in loggers]
        for logger in loggers:
            logger.disabled = True
        try:
            enforcer = casbin.Enforcer(parse_model(model_text, source), _RowsAdapter(rows))
        except Exception as error:
            raise PolicyError(f"cannot load the policy: {error}", original_error=error) from None
        finally:
            for logger, disabled in zip(loggers, saved, strict=True):
                logger.disabled = disabled
    enforcer.logger = _SILENT
    # Built-ins first, so that custom functions of the same name still replace them.
    for name, function in linear_builtins(enforcer.fm.get_functions()).items():
        enforcer.add_function(name, function)
    for name, function in functions.items():
        enforcer.add_function(name, function)
    for manager in enforcer.rm_map.values():
        bound(manager, RoleManager, DomainManager)
    return enforcer
