"""Every route's declaration checked against the configuration, model and policy, at once.

A declaration the model cannot decide (roles without ``g``, domains without ``GUARD_TENANT``,
a request of the wrong shape), an ``authn=`` scheme ``GUARD_AUTH`` does not enable or a matcher
function nobody registered would otherwise fail only that route, on every request, while the
rest of the app (and its health check) answers 200. Found here, they stop the whole app.
"""

from __future__ import annotations

from collections.abc import Iterable

from .authn.presence import absent
from .authz.engine import PolicyEngine
from .pipeline import GuardedRoute


def route_problems(
    routes: Iterable[tuple[str, GuardedRoute]],
    engine: PolicyEngine,
    *,
    tenants: bool,
    schemes: frozenset[str],
) -> list[str]:
    """What would fail each request of these routes, one line per route and problem.

    :param routes: each endpoint with its route.
    :param tenants: ``GUARD_TENANT`` is set.
    :param schemes: the scheme names ``GUARD_AUTH`` enables.
    """
    problems: list[str] = []
    decided: list[str] = []
    domains = len(engine.request_tokens) == 4 or engine.arities.get("g") == 3
    for endpoint, route in routes:
        if absent(route.view, schemes):
            continue  # it answers 404 until its schemes are enabled: nothing there can fail
        for method, each in (route.methods or {"": route}).items():
            where = f"endpoint {endpoint!r}" + (f" ({method})" if method else "")
            declaration = each.declaration
            unknown = sorted((each.authn or frozenset()) - schemes)
            if unknown:
                problems.append(
                    f"{where}: authn= names schemes GUARD_AUTH does not enable: {unknown}"
                )
            if not declaration.uses_policy:
                continue
            decided.append(where)
            if domains and not tenants:
                problems.append(
                    f"{where}: the Casbin model has domains: set GUARD_TENANT to say where a "
                    "request's tenant is"
                )
            if declaration.roles and engine.arities.get("g") not in (2, 3):
                problems.append(
                    f"{where}: declares roles {list(declaration.roles)} but the Casbin model has "
                    "no 'g' roles"
                )
            size = 4 if domains and tenants else 3
            if (declaration.route or declaration.objects) and len(engine.request_tokens) != size:
                problems.append(
                    f"{where}: route and object permissions need a model whose request is "
                    f"(sub, obj, act) or (sub, dom, obj, act); this one has "
                    f"{engine.request_tokens}"
                )
    if engine.unknown_functions:
        victims = ", ".join(decided) or "guard.enforce"
        problems.append(
            f"the Casbin matcher calls {list(engine.unknown_functions)}, which no one registered "
            f"(guard.add_function): every decision of {victims} would fail"
        )
    return problems
