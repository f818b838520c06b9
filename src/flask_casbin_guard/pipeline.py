"""The guarded view: authenticate, route checks, bind, object checks, view; in that order.

Each route's :class:`GuardedRoute` is compiled once at registration; per request this module only
walks the compiled plan. Route-level checks run before any input is parsed, so a caller who may
not use the route learns nothing about its parameters.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, Request, current_app, request, session
from flask.sessions import SessionMixin
from werkzeug.routing import Map, Rule

from . import signals
from .authz.declarations import Declaration, ObjectPermission, parse_declaration
from .authz.engine import PolicyEngine
from .authz.objects import check_object_values
from .errors import (
    AccessDenied,
    AuthenticationRequired,
    ConfigurationError,
    GuardHTTPError,
    ObjectNotFound,
    ParameterError,
    PolicyError,
    PolicyUnavailable,
)
from .identity import Identity
from .params.bind import bind
from .params.markers import CurrentUser
from .params.plan import BindingPlan, Provider, Resolver, check_path_params, compile_plan
from .types import ViewFunc

if TYPE_CHECKING:
    from .state import AppState

STATE_KEY = "casbin_guard.state"
#: the attribute of the request object holding what the guard remembers about that request
MEMO_ATTRIBUTE = "_casbin_guard_memo"
EXPLAIN_HEADER = "X-Guard-Explain"
_UNSET = object()


@dataclass(slots=True)
class RequestMemo:
    """What the guard remembers about one request, kept on the request object itself.

    Not in ``flask.g``: ``g`` belongs to the application context, and an app context pushed
    at import time (common with Flask-SQLAlchemy) is shared by every request its process
    serves, so the first caller's identity would be reused for everyone after it.
    """

    #: the caller per scheme restriction (a route's ``authn=``), ``None`` when anonymous
    identities: dict[frozenset[str] | None, Identity | None] = field(default_factory=dict)
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
) -> GuardedRoute:
    """Check ``spec`` against ``view``'s signature (and the rule, when known)."""
    declaration = parse_declaration(spec, endpoint)
    variables = rule_variables(rule) if rule is not None else None
    plan = compile_plan(
        view,
        endpoint,
        list(variables) if variables is not None else None,
        resolver=resolver,
        strict=strict,
        rule_converters=variables,
    )
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
) -> ViewFunc:
    """Wrap ``view`` so every call goes through the guard."""
    route = compile_route(
        view, spec, endpoint, rule=rule, resolver=resolver, strict=strict, authn=authn
    )

    def guarded(**view_args: Any) -> Any:
        return run(route, view_args)

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
        check_path_params(route.plan, route.endpoint, list(rule_variables(rule)))


def current_state() -> AppState:
    try:
        state: AppState = current_app.extensions[STATE_KEY]
    except KeyError:
        raise ConfigurationError(
            f"app {current_app.name!r} serves a guarded view but has no CasbinGuard"
        ) from None
    return state


def current_identity(
    state: AppState | None = None, schemes: frozenset[str] | None = None
) -> Identity | None:
    """The caller, authenticating on first use in this request (see :class:`RequestMemo`).

    ``schemes`` restricts the schemes tried (a route's ``authn=``); each restriction is
    resolved once per request.
    """
    memo = request_memo().identities
    if schemes not in memo:
        identity = (state or current_state()).authenticate(request, schemes)
        memo[schemes] = identity
        if identity is not None:
            signals.authenticated.send(current_sender(), identity=identity)
    return memo[schemes]


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


def _explain(caller: _Caller, allowed: bool, text: str) -> None:
    if caller.explain:
        memo = request_memo()
        memo.explain.append(f"{'allow' if allowed else 'deny'} {text}")
        memo.denial_explained = memo.denial_explained or not allowed


def current_session() -> Any:
    """The request's Flask session (the ``session`` scheme reads its login there)."""
    return session


def known_login() -> str | None:
    """The login already authenticated in this request, if any (for audit records)."""
    memo = getattr(request, MEMO_ATTRIBUTE, None)
    identities = memo.identities.values() if isinstance(memo, RequestMemo) else ()
    return next((identity.login for identity in identities if identity is not None), None)


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who asks, under which engine and tenant: what every Casbin check of a request needs."""

    engine: PolicyEngine
    route: GuardedRoute
    #: the Casbin subject: the login, after ``GUARD_USER_PREFIX``
    login: str
    #: the request's tenant (Casbin domain) for models with domains, else ``None``
    tenant: str | None
    #: record each decision and its rule for the dev-mode explain header
    explain: bool = False


def run(route: GuardedRoute, view_args: dict[str, Any]) -> Any:
    state = current_state()
    state.ensure_ready()
    declaration = route.declaration
    if declaration.close:
        raise AccessDenied(f"{route.endpoint}: closed route")
    # One engine for the whole request, even if a reload swaps another in meanwhile.
    explain = state.explain
    caller = _Caller(state.holder.engine, route, "", None, explain)
    if declaration.needs_user:
        identity = current_identity(state, route.authn)
        if identity is None:
            raise AuthenticationRequired(f"{route.endpoint}: no credentials")
        if declaration.uses_policy:
            tenant = _tenant(state, caller.engine, view_args, identity)
            # Decided exactly as Casbin would for this subject: a user the policy also uses
            # as a role keeps his rights. Squatted role names are refused where accounts are
            # made; GUARD_USER_PREFIX keeps users from elsewhere apart from roles.
            subject = state.settings.user_prefix + identity.login
            caller = _Caller(caller.engine, route, subject, tenant, explain)
            _check_route_level(caller)
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
    for permission in declaration.objects:
        _check_object(state, caller, permission, values[permission.param])
    view = current_app.ensure_sync(route.view) if route.is_async else route.view
    return view(**values)


def _tenant(
    state: AppState, engine: PolicyEngine, view_args: dict[str, Any], identity: Identity
) -> str | None:
    if len(engine.request_tokens) != 4 and engine.arities.get("g") != 3:
        return None  # no domains in this model
    if state.tenants is None:
        raise ConfigurationError(
            "the Casbin model has domains: set GUARD_TENANT to say where a request's tenant is"
        )
    return state.tenants.resolve(request, view_args, identity)


def _check_route_level(caller: _Caller) -> None:
    engine, route, login = caller.engine, caller.route, caller.login
    declaration = route.declaration
    if declaration.roles and engine.arities.get("g") not in (2, 3):
        raise ConfigurationError(
            f"endpoint {route.endpoint!r} declares roles but the Casbin model has no 'g' roles"
        )
    for role in declaration.roles:
        held = engine.has_role(login, role, caller.tenant)
        _explain(caller, held, f"role {role} for {login!r}")
        if not held:
            raise AccessDenied(f"{route.endpoint}: {login!r} lacks role {role!r}")
    if declaration.route:
        rule = request.url_rule.rule if request.url_rule else request.path
        method = "GET" if request.method == "HEAD" else request.method
        _decide(caller, rule, method)


def _check_object(
    state: AppState, caller: _Caller, permission: ObjectPermission, value: Any
) -> None:
    loader = state.guard.object_loaders.get(permission.type)
    if loader is not None:
        target = loader(value)
        if target is None:
            raise ObjectNotFound(f"{caller.route.endpoint}: no {permission.type} {value!r}")
    else:
        text = str(value)
        if not text.isprintable():
            raise AccessDenied(f"{caller.route.endpoint}: unprintable object value")
        target = f"{permission.type}:{text}"
    _decide(caller, target, permission.action)


def _decide(caller: _Caller, obj: Any, act: str) -> None:
    engine, endpoint, login = caller.engine, caller.route.endpoint, caller.login
    rvals: tuple[Any, ...] = (login, obj, act)
    if caller.tenant is not None:
        tokens = engine.request_tokens
        # Where the model puts the domain ("r = sub, obj, dom, act" is one of Casbin's own
        # examples); second when the model does not call it "dom".
        at = tokens.index("dom") if "dom" in tokens and len(tokens) == 4 else 1
        rvals = (*rvals[:at], caller.tenant, *rvals[at:])
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
    _explain(caller, allowed, f"{act} {obj}{because}")
    if not allowed:
        raise AccessDenied(f"{endpoint}: {login!r} may not {act!r} {str(obj)!r}{because}")


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
