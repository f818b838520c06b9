"""The guard's request hooks: the uncovered-endpoint refusal, audit records, session flags.

Registered on the app by :class:`~flask_casbin_guard.extension.CasbinGuard`; these are the
functions Flask calls around a request, so they read its globals.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from flask import Flask, Request, current_app, has_request_context, request, session
from flask.sessions import SessionMixin

from . import signals
from .authz.statics import is_static_endpoint
from .classviews import compile_endpoint
from .errors import AccessDenied, AuthenticationFailed, GuardHTTPError, TooManyAttempts
from .identity import Identity
from .params.markers import CurrentUser
from .params.plan import Provider
from .pipeline import (
    STATE_KEY,
    admit,
    current_identity,
    current_sender,
    known_login,
    method_route,
    route_of,
)
from .state import AppState

audit = logging.getLogger("flask_casbin_guard.audit")


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


def clip(value: str | None, limit: int = 256) -> str | None:
    """Client-chosen text for a log record: at most ``limit`` characters, marked when cut."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}...[{len(value)} characters]"


def audit_refusal(error: GuardHTTPError) -> None:
    """One structured record and one signal per refusal; never a secret, CR/LF escaped."""
    claimed = getattr(error, "login", None)
    login = claimed if claimed is not None else known_login()
    if isinstance(error, AuthenticationFailed | TooManyAttempts):
        event, signal = "authentication_failed", signals.authentication_failed
    elif isinstance(error, AccessDenied):
        event, signal = "access_denied", signals.access_denied
    else:
        event, signal = "refused", None
    record = {
        "event": event,
        "status": error.status,
        "method": request.method,
        "endpoint": request.endpoint,
        "path": clip(request.path),
        "user": clip(login),
        "reason": clip(error.log_message, 1024),
    }
    # %r escapes CR/LF, so a client-chosen value cannot forge a log line.
    audit.log(
        logging.ERROR if error.status >= 500 else logging.INFO,
        "%s %s %s %r user=%r -> %d: %r",
        event,
        request.method,
        request.endpoint,
        record["path"],
        record["user"],
        error.status,
        record["reason"],
        extra={"guard": record},
    )
    if signal is not None:
        sender = current_sender()
        signal.send(
            sender,
            login=login,
            endpoint=request.endpoint,
            reason=error.log_message,
            status=error.status,
        )


def request_is_secure() -> bool:
    return has_request_context() and request.is_secure


def auto_secure(app: Flask) -> bool:
    state: AppState | None = app.extensions.get(STATE_KEY)
    return state is not None and state.secure_from_request


def refuse_uncovered() -> Any:
    """Deny endpoints no declaration covers (apart from real static endpoints when open).

    Views registered without the guard's wrapper (class-based views, ``GUARD_DEFAULT_AUTHORIZE``)
    are compiled once and checked here; Flask then calls them with the bound values."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # routing failed: Flask answers 404/405 itself
    state: AppState = current_app.extensions[STATE_KEY]
    # Every request, guarded or not: a misconfigured app refuses as a whole, health check too.
    state.ensure_ready()
    view = current_app.view_functions.get(endpoint)
    if route_of(view) is not None:
        return None
    settings = state.settings
    if settings.open_static and is_static_endpoint(current_app, endpoint, state.static_view):
        return None
    if view is None:
        raise AccessDenied(f"endpoint {endpoint!r} has no view function")
    if endpoint not in state.late_routes:
        rule = request.url_rule.rule if request.url_rule else None
        state.late_routes[endpoint] = compile_endpoint(
            view, endpoint, rule, resolver=state.guard, default=settings.default_authorize
        )
    route = route_of(state.late_routes[endpoint])
    if route is None:
        raise AccessDenied(f"endpoint {endpoint!r} is not covered by any declaration")
    automatic_options = getattr(request.url_rule, "provide_automatic_options", False)
    if request.method == "OPTIONS" and automatic_options:
        return None  # Flask answers with the Allow header alone; the view never runs
    # Flask calls the view with these after the app's other before_request functions.
    request.view_args = admit(method_route(route, request.method), request.view_args or {})
    return None
