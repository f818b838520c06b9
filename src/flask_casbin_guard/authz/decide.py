"""The Casbin checks of one request: roles and ``ROUTE``, object permissions on values, then
the objects that loaders return, so nothing about an object shows before what needs no object.

The pipeline hands in what these checks need from the request (its rule template, method,
converted values, and how to call an object loader), so this module never reads Flask's globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    AccessDenied,
    ConfigurationError,
    ObjectAccessDenied,
    ObjectNotFound,
    PolicyError,
    PolicyUnavailable,
)
from ..types import ObjectLoader
from .declarations import Declaration, ObjectPermission
from .engine import PolicyEngine
from .objects import object_text


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, under which engine and tenant: what every Casbin check of a request needs."""

    engine: PolicyEngine
    endpoint: str
    #: the Casbin subject: the login, after ``GUARD_USER_PREFIX``
    login: str
    #: the request's tenant (Casbin domain) for models with domains, else ``None``
    tenant: str | None
    #: dev mode: ``note(allowed, text)`` records each decision for the explain header
    note: Callable[[bool, str], None] | None = None


def check_route_level(caller: Caller, declaration: Declaration, rule: str, method: str) -> None:
    """Roles, then ``ROUTE`` on the matched rule template and the method (HEAD as GET)."""
    engine, login = caller.engine, caller.login
    if declaration.roles and engine.arities.get("g") not in (2, 3):
        raise ConfigurationError(
            f"endpoint {caller.endpoint!r} declares roles but the Casbin model has no 'g' roles"
        )
    for role in declaration.roles:
        held = engine.has_role(login, role, caller.tenant)
        if caller.note is not None:
            caller.note(held, f"role {role} for {login!r}")
        if not held:
            raise AccessDenied(f"{caller.endpoint}: {login!r} lacks role {role!r}")
    if declaration.route:
        decide(caller, rule, "GET" if method == "HEAD" else method)


def check_objects(
    caller: Caller,
    objects: tuple[ObjectPermission, ...],
    values: Mapping[str, Any],
    loaders: Mapping[str, ObjectLoader],
    load: Callable[[ObjectLoader, Any], Any],
) -> None:
    """Decide every object permission; ``load(loader, value)`` calls an object loader.

    Permissions decided on the value alone come first, so a caller they deny never makes a
    loader run. A loaded object the caller may not act on is answered as a missing one
    (:class:`ObjectAccessDenied`, 404): a denied caller cannot tell present from missing.
    """
    loaded: list[tuple[ObjectPermission, ObjectLoader, Any]] = []
    for permission in objects:
        loader = loaders.get(permission.type)
        value = values[permission.param]
        if loader is not None:
            loaded.append((permission, loader, value))
            continue
        text = object_text(value)
        if not text.isprintable():
            raise AccessDenied(f"{caller.endpoint}: unprintable object value")
        decide(caller, f"{permission.type}:{text}", permission.action)
    for permission, loader, value in loaded:
        target = load(loader, value)
        if target is None:
            raise ObjectNotFound(f"{caller.endpoint}: no {permission.type} {value!r}")
        try:
            decide(caller, target, permission.action)
        except AccessDenied as denied:
            raise ObjectAccessDenied(denied.log_message) from None


def decide(caller: Caller, obj: Any, act: str) -> None:
    """Casbin's decision on ``(subject, [tenant,] obj, act)``: :class:`AccessDenied` when denied."""
    engine, endpoint, login = caller.engine, caller.endpoint, caller.login
    rvals = request_values(engine, login, caller.tenant, obj, act)
    if len(engine.request_tokens) != len(rvals):
        raise ConfigurationError(
            f"endpoint {endpoint!r}: route and object permissions need a model whose request "
            f"is (sub, obj, act) or (sub, dom, obj, act); this one has {engine.request_tokens}"
        )
    try:
        allowed, rule = engine.explain(*rvals)
    except PolicyError as error:
        # Logged once, by the error renderer; the message names the failure, not the policy.
        raise PolicyUnavailable(f"{endpoint}: {error}") from None
    because = f" (rule: {', '.join(rule)})" if rule else " (no rule matched)"
    if caller.note is not None:
        caller.note(allowed, f"{act} {obj}{because}")
    if not allowed:
        raise AccessDenied(f"{endpoint}: {login!r} may not {act!r} {str(obj)!r}{because}")


def request_values(
    engine: PolicyEngine, subject: str, tenant: str | None, obj: Any, act: str
) -> tuple[Any, ...]:
    """``(subject, [tenant,] obj, act)`` in the order of the model's request definition."""
    rvals: tuple[Any, ...] = (subject, obj, act)
    if tenant is None:
        return rvals
    tokens = engine.request_tokens
    # Where the model puts the domain ("r = sub, obj, dom, act" is one of Casbin's own
    # examples); second when the model does not call it "dom".
    at = tokens.index("dom") if "dom" in tokens and len(tokens) == 4 else 1
    return (*rvals[:at], tenant, *rvals[at:])
