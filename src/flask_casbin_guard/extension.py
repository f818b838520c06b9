"""``CasbinGuard``: the Flask extension: hooks, runtime API and error rendering."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, has_app_context, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.local import LocalProxy

from . import signals
from .accounts import AccountsAPI
from .authn.base import Scheme
from .authn.passwords import PasswordHasher
from .authn.session import RequestSchemeSessionInterface
from .authz.statics import is_static_endpoint
from .classviews import authorized, compile_endpoint
from .errors import (
    AccessDenied,
    AuthenticationFailed,
    ConfigurationError,
    GuardError,
    GuardHTTPError,
    PolicyError,
    TooManyAttempts,
)
from .params.annotations import caller_namespace
from .params.converters import Converter, text_converter
from .params.plan import Provider
from .pipeline import (
    STATE_KEY,
    admit,
    builtin_providers,
    current_identity,
    current_sender,
    explain_header,
    explain_refusal,
    known_login,
    method_route,
    route_of,
)
from .policies import PolicyManager
from .render import Renderer, render_html, render_json
from .state import AppState
from .types import ObjectLoader, PasswordGetter

EXTENSION_KEY = "casbin_guard"

log = logging.getLogger("flask_casbin_guard")
audit = logging.getLogger("flask_casbin_guard.audit")
F = TypeVar("F", bound=Callable[..., Any])


class CasbinGuard(AccountsAPI):
    """Protects a Flask app with Casbin.

    :param app: the app to protect now; or call :meth:`init_app` later.
    :param options: settings overriding ``GUARD_*`` keys, by field name (``auth=["basic"]``).
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self.options = options
        self.hasher = PasswordHasher()
        self.password_getter_func: PasswordGetter | None = None
        self.password_setter_func: Callable[[str, str], None] | None = None
        self.object_loaders: dict[str, ObjectLoader] = {}
        self.schemes: dict[str, Scheme] = {}
        self.functions: dict[str, Callable[..., Any]] = {}
        self.renderers: dict[str, Renderer] = {"json": render_json, "html": render_html}
        #: converters registered with :meth:`converter`, by type
        self.converters: dict[Any, Converter] = {}
        #: values registered with :meth:`provider`, by type
        self.user_providers: dict[Any, Provider] = {}
        self._builtins = builtin_providers(self)
        self._states: weakref.WeakValueDictionary[int, AppState] = weakref.WeakValueDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Attach to ``app`` and load its configuration and policy now."""
        self.attach(app).prepare()

    def attach(self, app: Flask) -> AppState:
        """Attach to ``app`` without reading its configuration yet (subclass mode)."""
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(f"app {app.name!r} already has a CasbinGuard")
        state = AppState(self, app)
        app.extensions[EXTENSION_KEY] = self
        app.extensions[STATE_KEY] = state
        self._states[id(state)] = state
        # Registered first so that no other hook runs for an endpoint no declaration covers.
        app.before_request_funcs.setdefault(None, []).insert(0, _refuse_uncovered)
        app.register_error_handler(GuardHTTPError, self._render_error)
        app.after_request(explain_header)
        if type(app.session_interface) is SecureCookieSessionInterface:
            # Only Flask's own interface is replaced: a custom one (Flask-Session...) keeps
            # its flags, and SESSION_COOKIE_SECURE as the guard sets it (docs/authentication.md).
            app.session_interface = RequestSchemeSessionInterface(_request_is_secure, _auto_secure)
        from .cli import guard_cli  # the CLI sits above the extension in the layers

        app.cli.add_command(guard_cli)
        return state

    # -- declarations and hooks -----------------------------------------------------------
    def authorize(self, spec: Any, *, authn: Any = None, strict: bool = False) -> Callable[[F], F]:
        """Decorator declaring what a view requires (place it below ``@app.route``).

        Also on the methods of a class-based view (each method its own declaration), in its
        ``decorators`` list or around ``as_view(...)`` (the whole class).

        :param authn: the only schemes this route accepts (a name or a list of names).
        :param strict: answer 400 for query, form or JSON keys the view does not take.
        """

        def decorator(view: F) -> F:
            wrapped = authorized(
                view, spec, resolver=self, authn=authn, strict=strict, namespace=caller_namespace()
            )
            return cast(F, wrapped)

        return decorator

    def converter(
        self, kind: Any, *, expected: str | None = None
    ) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
        """Decorator registering ``parse(text) -> value`` for parameters annotated ``kind``.

        ``parse`` raises ``ValueError`` for bad input; JSON strings go through it too. Register
        converters before the routes that use them.
        """

        def decorator(parse: Callable[[str], Any]) -> Callable[[str], Any]:
            words = expected or f"a valid {getattr(kind, '__name__', kind)}"
            self.converters[kind] = text_converter(kind, words, parse)
            return parse

        return decorator

    def provider(self, kind: Any) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Decorator registering ``factory()`` whose result is injected into views by type."""

        def decorator(factory: Callable[[], Any]) -> Callable[[], Any]:
            self.user_providers[kind] = Provider(factory)
            return factory

        return decorator

    def provider_for(self, hint: Any) -> Provider | None:
        """The injected value for annotation ``hint``, if any (the compiler asks)."""
        found = self.user_providers.get(hint) or self._builtins.get(hint)
        if found is None and isinstance(hint, type):
            # Subclasses too: an app's own Request class still receives the request.
            for kind, provider in self._builtins.items():
                if isinstance(kind, type) and issubclass(hint, kind):
                    return provider
        return found

    def password_getter(self, func: PasswordGetter) -> PasswordGetter:
        """Decorator registering ``login -> password hash or None``."""
        self.password_getter_func = func
        return func

    def password_setter(self, func: Callable[[str, str], None]) -> Callable[[str, str], None]:
        """Decorator registering ``(login, new_hash)``: stores hashes upgraded at login.

        Called after a successful login whose stored hash uses a legacy scheme (bcrypt,
        PBKDF2...) or weaker argon2 parameters than today's.
        """
        self.password_setter_func = func
        return func

    def object_loader(self, kind: str) -> Callable[[ObjectLoader], ObjectLoader]:
        """Decorator registering the loader of objects of type ``kind`` (``None`` gives 404).

        An ``async def`` loader is awaited as Flask awaits async views (``app.ensure_sync``;
        install the ``async`` extra).
        """

        def decorator(func: ObjectLoader) -> ObjectLoader:
            self.object_loaders[kind] = _awaited(func, kind)
            return func

        return decorator

    def register_scheme(self, name: str, scheme: Scheme) -> None:
        """Make a custom authentication scheme available to ``GUARD_AUTH``."""
        if not isinstance(scheme, Scheme):
            raise ConfigurationError(f"scheme {name!r} does not follow the Scheme protocol")
        self.schemes[name] = scheme

    def renderer(self, kind: str) -> Callable[[Renderer], Renderer]:
        """Decorator replacing the ``"json"`` or ``"html"`` error renderer."""
        if kind not in self.renderers:
            raise ConfigurationError(f"unknown renderer {kind!r}: use 'json' or 'html'")

        def decorator(func: Renderer) -> Renderer:
            self.renderers[kind] = func
            return func

        return decorator

    # -- runtime API ----------------------------------------------------------------------
    @property
    def current_user(self) -> str | None:
        """The authenticated login of the current request, or ``None``."""
        if not has_request_context():
            return None
        identity = current_identity(self._state())
        return identity.login if identity is not None else None

    @property
    def policies(self) -> PolicyManager:
        """Read and change the policy: persisted, applied atomically, announced to others."""
        return self._state().policies

    def enforce(self, sub: Any, *args: Any) -> bool:
        """pycasbin's decision for ``(sub, *args)`` in ``request_definition`` order."""
        return self._state().holder.engine.enforce(sub, *args)

    def explain(self, sub: Any, *args: Any) -> tuple[bool, tuple[str, ...]]:
        """The decision and the policy rule that decided it."""
        return self._state().holder.engine.explain(sub, *args)

    def subject(self, login: str) -> str:
        """The Casbin subject the guard decides for ``login``: ``GUARD_USER_PREFIX + login``.

        Pass it to :meth:`enforce` and :meth:`has_role` to get the decision a request of
        ``login`` gets.
        """
        return self._state().settings.user_prefix + login

    def has_role(self, user: str, role: str, domain: str | None = None) -> bool:
        """Whether ``user`` holds ``role`` (in ``domain``, for models with domains)."""
        return self._state().holder.engine.has_role(user, role, domain)

    def add_function(self, name: str, function: Callable[..., Any]) -> None:
        """Register a matcher function (``m = ... && myMatch(r.obj, p.obj)``).

        Apps already serving rebuild their engine with it. Decisions of models that use custom
        functions are not cached: the guard cannot know the function is pure.
        """
        if not name.isidentifier():
            raise ConfigurationError(f"{name!r} cannot be a matcher function name")
        self.functions[name] = function
        for state in list(self._states.values()):
            state.functions_changed()

    def validate(self, app: Flask | None = None) -> None:
        """Check the configuration, model, policy and every route's declaration now.

        The first request checks the same and, until that passes, every request fails: app
        factories and deploy scripts call this once their routes are registered, to fail first.

        :param app: the app to check (default: the current app, or this guard's only app).
        :raises ConfigurationError: listing every problem.
        """
        state = cast(AppState, app.extensions[STATE_KEY]) if app is not None else self._state()
        try:
            state.check()
        except PolicyError as error:  # a model or policy that cannot be loaded
            raise ConfigurationError(f"app {state.app_name!r} cannot serve: {error}") from error

    def reload_policy(self) -> None:
        """Re-read the policy store and swap atomically (old kept on error).

        The model (``GUARD_MODEL``) is read once, at ``init_app``: changing it needs a restart.
        """
        self._state().reload_policy()

    # -- internals ------------------------------------------------------------------------
    def _declared_roles(self) -> frozenset[str]:
        if not has_app_context():
            return frozenset()
        state: AppState | None = current_app.extensions.get(STATE_KEY)
        routes = [route_of(view) for view in current_app.view_functions.values()]
        if state is not None:  # views compiled by the guard's hook: class-based, default-declared
            routes += [route_of(view) for view in state.late_routes.values()]
        for endpoint, view in current_app.view_functions.items():
            if route_of(view) is None:  # a class-based view the hook has not compiled yet
                with contextlib.suppress(GuardError):
                    routes.append(
                        route_of(
                            compile_endpoint(view, endpoint, None, resolver=self, default=None)
                        )
                    )
        # A class-based view's roles are on its methods' routes.
        routes += [m for route in routes if route and route.methods for m in route.methods.values()]
        return frozenset(role for route in routes if route for role in route.declaration.roles)

    def _state(self) -> AppState:
        if has_app_context():
            state = current_app.extensions.get(STATE_KEY)
            if state is None or state.guard is not self:
                raise GuardError(f"this guard is not attached to app {current_app.name!r}")
            return cast(AppState, state)
        states = list(self._states.values())
        if len(states) != 1:
            raise GuardError("outside an app context this guard serves no single app")
        return states[0]

    def _render_error(self, error: GuardHTTPError) -> Response:
        state: AppState | None = current_app.extensions.get(STATE_KEY)
        wants_html = (
            request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"
        )
        response = self.renderers["html" if wants_html else "json"](error)
        if state is not None and state.explain:
            explain_refusal(error)  # the after_request hook turns it into the header
        if error.status == 401 and state is not None:
            for challenge in state.challenges:
                response.headers.add("WWW-Authenticate", challenge)
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after)
        response.headers["Cache-Control"] = "no-store"
        _audit(error)
        return response


def _awaited(loader: ObjectLoader, kind: str) -> ObjectLoader:
    """A loader the pipeline can call: else an async one's coroutine would pass for the object."""
    if not inspect.iscoroutinefunction(loader):
        return loader
    if importlib.util.find_spec("asgiref") is None:
        raise ConfigurationError(
            f"object loader {kind!r} is async: install flask-casbin-guard[async]"
        )

    def load(value: Any) -> Any:
        return current_app.ensure_sync(loader)(value)

    return load


def _clip(value: str | None, limit: int = 256) -> str | None:
    """Client-chosen text for a log record: at most ``limit`` characters, marked when cut."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}...[{len(value)} characters]"


def _audit(error: GuardHTTPError) -> None:
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
        "path": _clip(request.path),
        "user": _clip(login),
        "reason": _clip(error.log_message, 1024),
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


def _request_is_secure() -> bool:
    return has_request_context() and request.is_secure


def _auto_secure(app: Flask) -> bool:
    state: AppState | None = app.extensions.get(STATE_KEY)
    return state is not None and state.secure_from_request


def _refuse_uncovered() -> Any:
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


def _current_login() -> str | None:
    if not has_request_context():
        return None
    guard: CasbinGuard | None = current_app.extensions.get(EXTENSION_KEY)
    return guard.current_user if guard is not None else None


#: the authenticated login of the current request, or ``None`` (compare with ``==``)
current_user: Any = LocalProxy(_current_login)
