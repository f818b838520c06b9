"""The guarded view: authenticate, route checks, bind, object checks, view; in that order.

Each route's :class:`GuardedRoute` is compiled once at registration; per request this module only
walks the compiled plan. Route-level checks run before any input is parsed, so a caller who may
not use the route learns nothing about its parameters.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, Request, current_app, request, session
from flask.sessions import SessionMixin
from werkzeug.routing import Map, Rule

from . import signals
from .authz.decide import Caller, check_objects, check_route_level
from .authz.declarations import Declaration, parse_declaration
from .authz.engine import PolicyEngine
from .authz.objects import check_object_params, check_object_values
from .authz.tenants import has_domains
from .errors import (
    AccessDenied,
    AuthenticationRequired,
    ConfigurationError,
    GuardHTTPError,
    ParameterError,
)
from .identity import Identity
from .params.bind import bind
from .params.markers import CurrentUser
from .params.plan import BindingPlan, Provider, Resolver, check_path_params, compile_plan
from .types import ObjectLoader, ViewFunc

if TYPE_CHECKING:
    from .state import AppState

STATE_KEY = "casbin_guard.state"
#: the attribute of the request object holding what the guard remembers about that request
MEMO_ATTRIBUTE = "_casbin_guard_memo"
EXPLAIN_HEADER = "X-Guard-Explain"


@dataclass(slots=True)
class RequestMemo:
    """What the guard remembers about one request, kept on the request object itself.

    Not in ``flask.g``: ``g`` belongs to the application context, and an app context pushed
    at import time (common with Flask-SQLAlchemy) is shared by every request its process
    serves, so the first caller's identity would be reused for everyone after it.
    """

    #: the schemes the caller is resolved with: its route's ``authn=`` (``None``: all enabled)
    schemes: frozenset[str] | None = None
    #: ``schemes`` is fixed, by the guarded route or by the endpoint the request was routed to
    scoped: bool = False
    #: the one caller of this request once ``resolved``, ``None`` when anonymous
    identity: Identity | None = None
    resolved: bool = False
    #: dev mode: the decisions and refusals of this request, for the explain header
    explain: list[str] = field(default_factory=list)
    #: dev mode: a Casbin decision already explained the denial of this request
    denial_explained: bool = False


def request_memo() -> RequestMemo:
    """This request's :class:`RequestMemo`, made on first use."""
    current = cast(Any, request)._get_current_object()
    memo = getattr(current, MEMO_ATTRIBUTE, None)
    if not isinstance(memo, RequestMemo):
        memo = RequestMemo()
        setattr(current, MEMO_ATTRIBUTE, memo)
    return memo


@dataclass(frozen=True, slots=True)
class GuardedRoute:
    """A view with its compiled declaration and binding plan."""

    endpoint: str
    declaration: Declaration
    plan: BindingPlan
    view: ViewFunc
    is_async: bool
    #: the only schemes this route accepts (``authn=``), or ``None`` for all enabled ones
    authn: frozenset[str] | None = None
    #: a class-based view: the route of each HTTP method (``"*"``: every method)
    methods: Mapping[str, GuardedRoute] | None = None


def rule_variables(rule: str) -> dict[str, str]:
    """A URL rule's variables and their converters (``{"sid": "IntegerConverter"}``)."""
    parsed = Rule(rule)
    Map([parsed])  # binding a rule to a map is what parses its variables
    converters = parsed._converters
    return {name: type(converter).__name__ for name, converter in converters.items()}


def compile_route(
    view: ViewFunc,
    spec: Any,
    endpoint: str,
    *,
    rule: str | None = None,
    resolver: Resolver | None = None,
    strict: bool = False,
    authn: Any = None,
    namespace: Mapping[str, Any] | None = None,
    method: bool = False,
) -> GuardedRoute:
    """Check ``spec`` against ``view``'s signature (and the rule, when known).

    :param namespace: names visible where the view was declared, for its annotations.
    :param method: ``view`` is a class-based view's method (its ``self`` is not bound).
    """
    declaration = parse_declaration(spec, endpoint)
    variables = rule_variables(rule) if rule is not None else None
    plan = compile_plan(
        view,
        endpoint,
        list(variables) if variables is not None else None,
        resolver=resolver,
        strict=strict,
        rule_converters=variables,
        namespace=namespace,
        method=method,
    )
    check_object_params(declaration, plan, endpoint)
    bound = {s.name for s in plan.params if s.provider is None}
    for param in sorted(declaration.params - bound):
        raise ConfigurationError(
            f"endpoint {endpoint!r}: authorization names parameter {param!r}, "
            "which is not a request parameter of its view"
        )
    for param_spec in plan.params:
        provider = param_spec.provider
        if declaration.open and provider and provider.needs_user and not param_spec.nullable:
            raise ConfigurationError(
                f"endpoint {endpoint!r} is OPEN, so parameter {param_spec.name!r} may be "
                "None: annotate it '... | None'"
            )
    is_async = inspect.iscoroutinefunction(view)
    if is_async and importlib.util.find_spec("asgiref") is None:
        raise ConfigurationError(
            f"endpoint {endpoint!r} is an async view: install flask-casbin-guard[async]"
        )
    return GuardedRoute(endpoint, declaration, plan, view, is_async, _schemes(authn, endpoint))


def _schemes(authn: Any, endpoint: str) -> frozenset[str] | None:
    """``authn="basic"`` or a list of scheme names; checked against GUARD_AUTH on first use."""
    if authn is None:
        return None
    names = [authn] if isinstance(authn, str) else authn
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise ConfigurationError(
            f"endpoint {endpoint!r}: authn= takes a scheme name or a list of them"
        )
    return frozenset(names)


def guard_view(
    view: ViewFunc,
    spec: Any,
    endpoint: str,
    *,
    rule: str | None = None,
    resolver: Resolver | None = None,
    strict: bool = False,
    authn: Any = None,
    namespace: Mapping[str, Any] | None = None,
) -> ViewFunc:
    """Wrap ``view`` so every call goes through the guard."""
    route = compile_route(
        view,
        spec,
        endpoint,
        rule=rule,
        resolver=resolver,
        strict=strict,
        authn=authn,
        namespace=namespace,
    )

    def guarded(**view_args: Any) -> Any:
        return run(route, view_args)

    functools.update_wrapper(guarded, view)
    guarded.__dict__["__guard_route__"] = route
    return guarded


def guard_class_view(view: ViewFunc, route: GuardedRoute) -> ViewFunc:
    """Wrap a class-based view: each request runs the route of its HTTP method.

    Flask's own dispatch then calls the method, so ``init_every_request``, ``decorators`` and
    async methods behave as without the guard. A method no declaration covers is refused.
    """

    def guarded(**view_args: Any) -> Any:
        return run(method_route(route, request.method), view_args)

    functools.update_wrapper(guarded, view)
    guarded.__dict__["__guard_route__"] = route
    return guarded


def route_of(view: Any) -> GuardedRoute | None:
    """The guard's plan for a registered view function, if it has one."""
    return getattr(view, "__guard_route__", None)


def recheck_rule(view: ViewFunc, rule: str) -> None:
    """A view guarded before its final rule was known (blueprint prefixes) meets it now."""
    route = route_of(view)
    if route is not None:
        variables = list(rule_variables(rule))
        for each in (route.methods or {}).values() or (route,):
            check_path_params(each.plan, each.endpoint, variables)


def current_state() -> AppState:
    try:
        state: AppState = current_app.extensions[STATE_KEY]
    except KeyError:
        raise ConfigurationError(
            f"app {current_app.name!r} serves a guarded view but has no CasbinGuard"
        ) from None
    return state


def current_identity(state: AppState | None = None) -> Identity | None:
    """The caller, authenticating on first use in this request (see :class:`RequestMemo`).

    One identity per request, resolved once with the schemes its route accepts: the decision,
    the injected ``CurrentUser``/``Identity`` and ``current_user`` (in ``before_request``
    functions too) all see it, so a session riding along with a bearer token on an
    ``authn="bearer"`` route can never hand the view another user than the one authorized.
    """
    memo = request_memo()
    if not memo.scoped:
        memo.schemes, memo.scoped = _endpoint_schemes(), True
    if not memo.resolved:
        identity = (state or current_state()).authenticate(request, memo.schemes)
        memo.identity, memo.resolved = identity, True
        if identity is not None:
            signals.authenticated.send(current_sender(), identity=identity)
    return memo.identity


def _endpoint_schemes() -> frozenset[str] | None:
    """The ``authn=`` of the guarded route the request was routed to, if any."""
    endpoint = request.endpoint
    route = route_of(current_app.view_functions.get(endpoint)) if endpoint else None
    return route.authn if route is not None else None


def _scope(route: GuardedRoute) -> None:
    """Fix this request's schemes to ``route``'s; a second, different restriction is refused."""
    memo = request_memo()
    if not memo.scoped:
        memo.schemes, memo.scoped = route.authn, True
    elif memo.schemes != route.authn:
        # A guarded view called from another view: deciding for one identity and injecting
        # another is what one identity per request rules out.
        raise ConfigurationError(
            f"endpoint {route.endpoint!r} (authn={sorted(route.authn or ())}) runs in a request "
            f"whose caller was resolved with authn={sorted(memo.schemes or ())}"
        )


def explain_header(response: Any) -> Any:
    """Dev mode: the decisions of this request and their rules, in one response header."""
    memo = getattr(request, MEMO_ATTRIBUTE, None)
    decisions = memo.explain if isinstance(memo, RequestMemo) else None
    if decisions:
        text = "; ".join(decisions)
        # Header values must be latin-1 and one line: escape anything else.
        response.headers[EXPLAIN_HEADER] = text.encode("unicode_escape").decode("ascii")[:2000]
    return response


def explain_refusal(error: GuardHTTPError) -> None:
    """Dev mode: every refusal carries its reason, not only the denials Casbin decided."""
    memo = request_memo()
    if not memo.denial_explained:
        memo.explain.append(f"refused {error.status}: {error.log_message}")


def _note(allowed: bool, text: str) -> None:
    memo = request_memo()
    memo.explain.append(f"{'allow' if allowed else 'deny'} {text}")
    memo.denial_explained = memo.denial_explained or not allowed


def _load(loader: ObjectLoader, value: Any) -> Any:
    # Async loaders are awaited as async views are (asgiref); sync ones are called as they are.
    return current_app.ensure_sync(loader)(value)


def current_session() -> Any:
    """The request's Flask session (the ``session`` scheme reads its login there)."""
    return session


def known_login() -> str | None:
    """The login already authenticated in this request, if any (for audit records)."""
    memo = getattr(request, MEMO_ATTRIBUTE, None)
    identity = memo.identity if isinstance(memo, RequestMemo) else None
    return identity.login if identity is not None else None


def run(route: GuardedRoute, view_args: dict[str, Any]) -> Any:
    values = admit(route, view_args)
    view = current_app.ensure_sync(route.view) if route.is_async else route.view
    return view(**values)


def method_route(route: GuardedRoute, method: str) -> GuardedRoute:
    """A class-based view's route for the request's HTTP method."""
    methods = route.methods
    if methods is None:
        return route
    found = methods.get(method) or methods.get("*")
    if found is None and method == "HEAD":
        found = methods.get("GET")  # as MethodView answers HEAD with get()
    if found is None:
        raise AccessDenied(f"{route.endpoint}: no declaration covers method {method}")
    return found


def admit(route: GuardedRoute, view_args: dict[str, Any]) -> dict[str, Any]:
    """Every check of ``route`` for this request: the view's arguments if it may go on."""
    state = current_state()
    state.ensure_ready()
    _scope(route)
    declaration = route.declaration
    if declaration.close:
        raise AccessDenied(f"{route.endpoint}: closed route")
    # One engine for the whole request, even if a reload swaps another in meanwhile.
    note = _note if state.explain else None
    caller = Caller(state.holder.engine, route.endpoint, "", None, note)
    if declaration.needs_user:
        identity = current_identity(state)
        if identity is None:
            raise AuthenticationRequired(f"{route.endpoint}: no credentials")
        if declaration.uses_policy:
            tenant = _tenant(state, caller.engine, view_args, identity)
            # Decided exactly as Casbin would for this subject: a user the policy also uses
            # as a role keeps his rights. Squatted role names are refused where accounts are
            # made; GUARD_USER_PREFIX keeps users from elsewhere apart from roles.
            subject = state.settings.user_prefix + identity.login
            caller = Caller(caller.engine, route.endpoint, subject, tenant, note)
            rule = request.url_rule.rule if request.url_rule else request.path
            check_route_level(caller, declaration, rule, request.method)
    if route.plan.params:
        values, issues = bind(route.plan, view_args, request)
        if issues:
            raise ParameterError(issues)
    else:
        values = {}
    if not view_args.keys() <= route.plan.names and not route.plan.var_keyword:
        check_path_params(route.plan, route.endpoint, list(view_args))
    if declaration.objects:
        check_object_values(declaration, route.plan, values, view_args, state.settings)
        loaders = state.guard.object_loaders
        check_objects(caller, declaration.objects, values, loaders, _load)
    return values


def _tenant(
    state: AppState, engine: PolicyEngine, view_args: dict[str, Any], identity: Identity
) -> str | None:
    if not has_domains(engine):
        return None
    if state.tenants is None:
        raise ConfigurationError(
            "the Casbin model has domains: set GUARD_TENANT to say where a request's tenant is"
        )
    return state.tenants.resolve(request, view_args, identity)


def builtin_providers(guard: Any) -> dict[Any, Provider]:
    """Values injected by type into any guarded view: who calls, the request, session, guard."""

    def identity() -> Identity | None:
        return current_identity()

    def login() -> str | None:
        found = current_identity()
        return found.login if found is not None else None

    return {
        Identity: Provider(identity, needs_user=True),
        CurrentUser: Provider(login, needs_user=True),
        # The objects behind Flask's proxies, so views may keep them past the request.
        Request: Provider(lambda: cast(Any, request)._get_current_object()),
        SessionMixin: Provider(lambda: cast(Any, session)._get_current_object()),
        type(guard): Provider(lambda: guard),
    }


def current_sender() -> Flask:
    """The app itself, not the ``current_app`` proxy (Flask's type hides): signals' sender."""
    return cast(Flask, cast(Any, current_app)._get_current_object())
