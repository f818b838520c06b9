"""Class-based views and the endpoints compiled after registration.

A class-based view (``MethodView``, ``View.as_view``) is one endpoint whose HTTP methods are
separate functions: each method gets its own compiled route, from its own signature and its own
declaration (``@guard.authorize`` on the method), else the class's (``authorize=``,
``decorators = [guard.authorize(...)]``, or ``guard.authorize(...)`` around ``as_view``), else
``GUARD_DEFAULT_AUTHORIZE``. A method with none is refused, as an undeclared function view is.

``@guard.authorize`` cannot compile a method where it is written (its class does not exist
yet), so there it only records the declaration, checked at once, on the function.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from flask.views import MethodView, View

from .authz.declarations import Declaration, parse_declaration
from .errors import AccessDenied, ConfigurationError
from .params.plan import Resolver
from .pipeline import GuardedRoute, compile_route, guard_class_view, guard_view, method_route
from .types import ViewFunc

_DECLARED = "__guard_declared__"
#: the code of the function ``View.as_view`` builds, which ``decorators`` receive
_AS_VIEW_CODES = frozenset(
    const
    for const in vars(View)["as_view"].__func__.__code__.co_consts
    if isinstance(const, types.CodeType)
)


@dataclass(frozen=True, slots=True)
class Declared:
    """A declaration written where its view cannot be compiled yet."""

    spec: Any
    authn: Any = None
    strict: bool = False
    #: names visible where it was written (an app factory's locals), for the annotations
    namespace: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def defers(view: Any) -> bool:
    """Whether ``@guard.authorize`` must record rather than compile: a method being defined
    in a class body, or the function ``as_view`` hands to ``decorators``."""
    if getattr(view, "__code__", None) in _AS_VIEW_CODES:
        return True
    parts = getattr(view, "__qualname__", "").split(".")
    # A function defined in a class body has its class's name before its own; a nested
    # function has "<locals>" there.
    return len(parts) > 1 and parts[-2] != "<locals>"


def declare(view: ViewFunc, declared: Declared, endpoint: str) -> ViewFunc:
    """Record ``declared`` on ``view`` (refusing a malformed declaration now)."""
    parse_declaration(declared.spec, endpoint)
    view.__dict__[_DECLARED] = declared
    return view


def declared_on(view: Any) -> Declared | None:
    found = getattr(view, _DECLARED, None)
    return found if isinstance(found, Declared) else None


def view_class(view: Any) -> type[View] | None:
    """The class behind a view function made by ``as_view``, if it is one."""
    kind = getattr(view, "view_class", None)
    return kind if isinstance(kind, type) and issubclass(kind, View) else None


def guard_class(
    view: ViewFunc,
    endpoint: str,
    *,
    resolver: Resolver,
    rule: str | None = None,
    spec: Any = None,
    authn: Any = None,
    strict: bool = False,
    namespace: Mapping[str, Any] | None = None,
    default: Any = None,
    required: bool = False,
) -> ViewFunc | None:
    """The guarded form of ``view`` (made by ``as_view``), or ``None`` if nothing covers it.

    :param spec: the class-wide declaration given with the route (``authorize=``).
    :param required: every method must be covered (the seed style); else an uncovered method
        answers 403.
    :raises ConfigurationError: naming the endpoint, and the method at fault.
    """
    kind = view_class(view)
    if kind is None:
        raise ConfigurationError(f"endpoint {endpoint!r}: not a class-based view")
    whole = declared_on(view)
    if whole is not None:
        if spec is not None:
            raise ConfigurationError(f"endpoint {endpoint!r}: authorization declared twice")
        spec, authn, strict = whole.spec, whole.authn, whole.strict
        namespace = {**(namespace or {}), **whole.namespace}
    if issubclass(kind, MethodView):
        functions = {name: getattr(kind, name.lower()) for name in sorted(kind.methods or ())}
    else:
        functions = {"*": kind.dispatch_request}
    routes: dict[str, GuardedRoute] = {}
    outer = dict(namespace or {})
    for method, function in functions.items():
        own = declared_on(function)
        if own is not None:
            chosen = dataclasses.replace(own, namespace={**outer, **own.namespace})
        else:
            chosen = Declared(spec if spec is not None else default, authn, strict, outer)
        if chosen.spec is None:
            if required:
                raise ConfigurationError(
                    f"endpoint {endpoint!r} ({rule}): method {method} of {kind.__name__} has no "
                    "declaration: decorate it with @guard.authorize, give authorize=, or set "
                    "GUARD_DEFAULT_AUTHORIZE"
                )
            continue
        route = compile_route(
            function,
            chosen.spec,
            endpoint,
            rule=rule,
            resolver=resolver,
            strict=chosen.strict,
            authn=chosen.authn,
            namespace=chosen.namespace,
            method=True,
        )
        # Flask's dispatch (the registered view) calls the method, async or not.
        routes[method] = dataclasses.replace(route, view=view, is_async=False)
    if not routes:
        return None
    first = next(iter(routes.values()))
    summary = Declaration(
        open=all(r.declaration.open for r in routes.values()),
        text="; ".join(f"{m}: {r.declaration.text}" for m, r in routes.items()),
    )
    whole_route = GuardedRoute(endpoint, summary, first.plan, view, False, None, routes)
    return guard_class_view(view, whole_route)


def authorized(
    view: ViewFunc,
    spec: Any,
    *,
    resolver: Resolver,
    authn: Any,
    strict: bool,
    namespace: Mapping[str, Any],
) -> ViewFunc:
    """What ``@guard.authorize(spec)`` makes of ``view``: a guarded view, or ``view`` itself
    with the declaration recorded for when its class is registered."""
    if view_class(view) is not None:
        guarded = guard_class(
            view,
            view.__name__,
            resolver=resolver,
            spec=spec,
            authn=authn,
            strict=strict,
            namespace=namespace,
            required=True,
        )
        return cast(ViewFunc, guarded)  # required=True: never None
    if defers(view):
        return declare(view, Declared(spec, authn, strict, namespace), view.__qualname__)
    return guard_view(
        view,
        spec,
        view.__name__,
        resolver=resolver,
        strict=strict,
        authn=authn,
        namespace=namespace,
    )


def compile_endpoint(
    view: ViewFunc, endpoint: str, rule: str | None, *, resolver: Resolver, default: Any
) -> ViewFunc | None:
    """The guarded form of a view registered without the guard's wrapper (extension mode).

    Class-based views, functions declared in a class body, then ``GUARD_DEFAULT_AUTHORIZE``;
    ``None`` when no declaration covers the endpoint.
    """
    if view_class(view) is not None:
        return guard_class(view, endpoint, resolver=resolver, rule=rule, default=default)
    declared = declared_on(view)
    if declared is None:
        if default is None:
            return None
        declared = Declared(default)
    return guard_view(
        view,
        declared.spec,
        endpoint,
        rule=rule,
        resolver=resolver,
        strict=declared.strict,
        authn=declared.authn,
        namespace=declared.namespace,
    )


def uncovered_methods(route: GuardedRoute, methods: Iterable[str], automatic: bool) -> list[str]:
    """The HTTP ``methods`` of a rule that no declaration of ``route`` covers: each answers 403.

    Asked of :func:`~.pipeline.method_route`, which decides requests, so the listing cannot
    disagree with them. ``automatic``: Flask answers OPTIONS itself (the guard lets it).
    """
    if route.methods is None:
        return []  # a function view: its one declaration covers every method
    missing = []
    for method in sorted(methods):
        if method == "OPTIONS" and automatic:
            continue
        try:
            method_route(route, method)
        except AccessDenied:
            missing.append(method)
    return missing
