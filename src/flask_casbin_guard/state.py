"""Per-app state of a guard: validated settings, the policy engine, the authentication chain."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Request

from .authn.bearer import BearerScheme
from .authn.chain import AuthChain
from .authn.credentials import PasswordChecker
from .authn.ratelimit import FailureLimiter
from .authn.registry import PASSWORD_SCHEMES, build_schemes, make_limiter
from .authn.revocation import (
    REVOCATION_TTL,
    MemoryRevocations,
    Revocations,
    StoreRevocations,
    check_identity,
)
from .authn.session import configure_session
from .authn.verified import VerifiedPasswords
from .authz.engine import EngineHolder, PolicyEngine
from .authz.tenants import TenantResolver
from .classviews import compile_endpoint
from .config import GuardSettings
from .errors import ConfigurationError, GuardError, PolicyError
from .identity import Identity
from .loading import check_unsupported, load_policy
from .pipeline import GuardedRoute, current_session, route_of
from .policies import PolicyManager
from .store.database import DatabaseStore
from .store.revoked import open_local
from .store.users import UserStore
from .sync.base import Watcher, make_watcher
from .types import PasswordGetter, ViewFunc
from .validation import route_problems

if TYPE_CHECKING:
    from .extension import CasbinGuard

log = logging.getLogger("flask_casbin_guard")


class AppState:
    """What one guard knows about one app: settings, policy engine, authentication chain."""

    def __init__(self, guard: CasbinGuard, app: Flask) -> None:
        self.guard = guard
        self.config = app.config
        # Shared, not copied: routes registered later are seen when the routes are checked.
        self.url_map = app.url_map
        self.view_functions = app.view_functions
        self.root_path = app.root_path
        self.instance_path = app.instance_path
        self.app_name = app.name
        #: the view Flask registered for the app's static folder, if any (authz/statics.py)
        self.static_view = app.view_functions.get("static") if app.has_static_folder else None
        self._settings: GuardSettings | None = None
        self._holder: EngineHolder | None = None
        self._policies: PolicyManager | None = None
        #: where a request's tenant comes from (``GUARD_TENANT``), for models with domains
        self.tenants: TenantResolver | None = None
        #: revoked sessions and tokens, per-user stamps, disabled accounts
        self.revocations: Revocations = MemoryRevocations()
        self.password_checker: PasswordChecker | None = None
        #: Basic's recent successful verifications (``GUARD_BASIC_CACHE_SECONDS``; 0: none)
        self.verified = VerifiedPasswords(0)
        #: failed-login and registration counts (``GUARD_AUTH_*_RATE_LIMIT``...)
        self.limiter: FailureLimiter | None = None
        #: dev mode: responses carry the deciding rules (``X-Guard-Explain``)
        self.explain = False
        #: the built-in user store (database policy stores only)
        self.users: UserStore | None = None
        self._watcher: Watcher | None = None
        #: the process that loaded the policy; another one is a fork of it (gunicorn --preload)
        self._loaded_pid = 0
        self._failed_version: int | None = None
        self._watch_callback: Callable[[int | None], None] = self._on_change
        self._chain: AuthChain | None = None
        self._bearer: BearerScheme | None = None
        self._ready = False
        self._lock = threading.RLock()
        #: guarded forms of views registered without the guard's wrapper (``None``: uncovered)
        self.late_routes: dict[str, ViewFunc | None] = {}
        #: guard sessions with GUARD_SESSION_SECURE unset: ``Secure`` follows each request's scheme
        self.secure_from_request = False

    # -- set-up ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Read ``GUARD_*`` and load the policy (once; raises on any configuration error)."""
        if self._settings is not None:
            return  # the per-request path: no lock once prepared
        with self._lock:
            if self._settings is not None:
                return
            settings = GuardSettings.from_mapping(self.config, self.guard.options)
            # another process's revocation goes unseen at most as long as its policy changes
            revocation_ttl = min(REVOCATION_TTL, settings.watcher_interval)
            check_unsupported(settings)
            loaded = load_policy(settings, self.root_path, self.instance_path)
            store = loaded.store
            if store is not None:
                # The store's pooled connections close when this app's state goes away.
                weakref.finalize(self, store.close)
            engine = PolicyEngine(
                loaded.text,
                loaded.rows,
                source=loaded.source,
                functions=self.guard.functions,
                cache_size=settings.decision_cache_size,
                cache_bytes=settings.decision_cache_bytes,
            )
            holder = EngineHolder(engine)
            policies = PolicyManager(
                loaded.text,
                loaded.source,
                store,
                holder,
                self.guard.functions,
                settings.decision_cache_size,
                settings.decision_cache_bytes,
            )
            policies.version = loaded.version
            watcher, users, revocations = None, None, self.revocations
            if isinstance(store, DatabaseStore):
                # The built-in user store lives in the policy database: users, API keys,
                # revocations are then shared by every process.
                users = UserStore(store.engine, policy=store, subject_prefix=settings.user_prefix)
                revocations = StoreRevocations(users, revocation_ttl)
                users.on_delete.append(_weak(self, "account_deleted"))
                # Without GUARD_WATCHER a database store is still polled: processes sharing it
                # would otherwise never see each other's changes.
                spec = settings.watcher or "poll"
                watcher = make_watcher(
                    spec, version=store.version, interval=settings.watcher_interval
                )
                policies.notify = watcher.notify
                # The watcher's thread must not keep this state (and its app) alive.
                weakref.finalize(self, watcher.stop, 1.0)
                self._watch_callback = _weak(self, "_on_change")
            realm = settings.realm or self.app_name
            bearer = None
            if "bearer" in settings.auth or settings.jwt_secret or settings.jwt_public_key:
                bearer = BearerScheme(settings, realm)
            if users is None and (bearer is not None or "session" in settings.auth):
                # Logouts, used refresh tokens and revoked users must survive a restart: kept
                # in memory they would come back to life with the next deploy.
                local = open_local(settings.revocation_store, self.instance_path)
                weakref.finalize(self, local.close)
                revocations = StoreRevocations(local, revocation_ttl)
            limiter = make_limiter(settings)
            verified = VerifiedPasswords(settings.basic_cache_seconds)
            if "session" in settings.auth:
                self.secure_from_request = configure_session(self.config, settings)
            schemes = build_schemes(
                settings,
                realm,
                bearer=bearer,
                get_user_pass=self._get_user_pass,
                hasher=self.guard.hasher,
                registered=self.guard.schemes,
                testing=lambda: bool(self.config.get("TESTING")),
                rehash=self._store_rehash,
                limiter=limiter,
                session=current_session,
                api_keys=users.check_api_key if users is not None else None,
                verified=verified,
                stamp=revocations.valid_after,
            )
            # Nothing below can fail: the state changes only once everything is built.
            self.users, self.revocations, self.verified = users, revocations, verified
            #: the checks of every password login (rate limit, dummy hash, rehash)
            self.password_checker = PasswordChecker(
                self._get_user_pass,
                self.guard.hasher,
                limiter,
                self._store_rehash,
                settings.password_max_length,
            )
            self.limiter = limiter
            self.explain = settings.mode == "dev"
            self._chain = AuthChain(schemes)
            self._bearer, self._holder, self._policies = bearer, holder, policies
            self._watcher = watcher
            self._loaded_pid = os.getpid()
            self.tenants = TenantResolver(settings.tenant) if settings.tenant else None
            self._settings = settings

    def ensure_ready(self) -> None:
        """:meth:`check` once, then make sure this process's change watcher runs.

        The watcher starts here, at a request, so that it runs in each gunicorn worker after the
        fork, never in the master (``start`` is cheap once running).
        """
        if not self._ready:
            with self._lock:
                self.check()
                self._ready = True
        # After check() -> prepare(), which creates the watcher at a process's first request:
        # started before it, the watcher of a worker that loads its policy lazily would only run
        # from that worker's second request on, and that request would be decided on the first's
        # policy, however old.
        if self._watcher is not None:
            if self._loaded_pid != os.getpid():
                self._catch_up()
            self._watcher.start(self._watch_callback)

    def check(self) -> None:
        """:meth:`prepare`, then check every route's declaration against the configuration.

        Until this passes, every request fails (500): a misconfigured app refuses as a whole.

        :raises ConfigurationError: listing every problem found.
        """
        with self._lock:
            self.prepare()
            needs_getter = PASSWORD_SCHEMES.intersection(self.settings.auth) - {"apikey"}
            if needs_getter and self.password_getter is None:
                raise ConfigurationError(
                    f"GUARD_AUTH enables {sorted(needs_getter)} but no password getter is set: "
                    "use GUARD_GET_USER_PASS or @guard.password_getter"
                )
            problems, routes = self._compile_routes()
            assert self._chain is not None  # noqa: S101 - set by prepare(), for mypy only
            problems += route_problems(
                routes,
                self.holder.engine,
                tenants=self.tenants is not None,
                schemes=self._chain.names,
            )
            if problems:
                raise ConfigurationError(
                    f"app {self.app_name!r} cannot serve:\n- " + "\n- ".join(problems)
                )

    def _compile_routes(self) -> tuple[list[str], list[tuple[str, GuardedRoute]]]:
        """The route of every endpoint, compiling those registered without the guard's wrapper
        (class-based views, GUARD_DEFAULT_AUTHORIZE) once; their compile errors as problems."""
        problems: list[str] = []
        routes: dict[str, GuardedRoute] = {}
        settings = self.settings
        for rule in self.url_map.iter_rules():
            endpoint, view = rule.endpoint, self.view_functions.get(rule.endpoint)
            if endpoint in routes or view is None:
                continue
            route = route_of(view)
            static = endpoint == "static" or endpoint.endswith(".static")
            if route is None and not (static and settings.open_static):
                if endpoint not in self.late_routes:
                    try:
                        self.late_routes[endpoint] = compile_endpoint(
                            view,
                            endpoint,
                            rule.rule,
                            resolver=self.guard,
                            default=settings.default_authorize,
                        )
                    except ConfigurationError as error:
                        problems.append(str(error))
                        continue
                route = route_of(self.late_routes[endpoint])
            if route is not None:
                routes[endpoint] = route
        return problems, list(routes.items())

    def _catch_up(self) -> None:
        """In a process forked after the policy was loaded, reload it if the store moved on.

        The fork copied the parent's policy, which may be old (a gunicorn worker replaced long
        after the master loaded it): without this, its first requests would be decided on it
        until the watcher thread, started by the same request, caught up.
        """
        with self._lock:
            if self._loaded_pid == os.getpid():
                return
            self._loaded_pid = os.getpid()
            try:
                self.policies.reload()
            except GuardError as error:  # the watcher retries; meanwhile the copy stays in force
                log.warning("policy reload after fork failed, keeping the inherited one: %s", error)

    # -- accessors ------------------------------------------------------------------------
    @property
    def settings(self) -> GuardSettings:
        self.prepare()
        assert self._settings is not None  # noqa: S101 - set by prepare(), for mypy only
        return self._settings

    @property
    def holder(self) -> EngineHolder:
        self.prepare()
        assert self._holder is not None  # noqa: S101 - set by prepare(), for mypy only
        return self._holder

    @property
    def policies(self) -> PolicyManager:
        self.prepare()
        assert self._policies is not None  # noqa: S101 - set by prepare(), for mypy only
        return self._policies

    @property
    def bearer(self) -> BearerScheme:
        self.prepare()
        if self._bearer is None:
            raise ConfigurationError("tokens need GUARD_JWT_SECRET (and 'bearer' in GUARD_AUTH)")
        return self._bearer

    @property
    def challenges(self) -> tuple[str, ...]:
        return self._chain.challenges if self._chain is not None else ()

    @property
    def password_getter(self) -> PasswordGetter | None:
        found = self.settings.get_user_pass or self.guard.password_getter_func
        if found is None and self.users is not None:
            return self.users.password_hash  # None for unknown and disabled users alike
        return found

    def _get_user_pass(self, login: str) -> str | None:
        getter = self.password_getter
        return getter(login) if getter is not None else None

    def _store_rehash(self, login: str, new_hash: str) -> None:
        setter = self.guard.password_setter_func
        if setter is not None:
            setter(login, new_hash)
        elif self.users is not None and self.password_getter == self.users.password_hash:
            # An upgraded hash of the same password: sessions and tokens stay valid.
            self.users.set_password(login, new_hash, revoke_tokens=False)

    def authenticate(self, req: Request, schemes: frozenset[str] | None = None) -> Identity | None:
        """The caller, trying every enabled scheme or only ``schemes`` (a route's ``authn=``,
        checked against ``GUARD_AUTH`` once, by :meth:`check`, before any request)."""
        self.ensure_ready()
        assert self._chain is not None  # noqa: S101 - set by prepare(), for mypy only
        identity = self._chain.authenticate(req, schemes)
        return check_identity(identity, self.revocations) if identity is not None else None

    def account_deleted(self, login: str) -> None:
        """The user store deleted ``login`` with its rules: forget its answers, load the rules."""
        self.revocations.forget(login)
        self.verified.forget(login)
        self.policies.store_changed()

    def _on_change(self, version: int | None) -> None:
        """Another process changed the policy: rebuild off to the side and swap."""
        policies = self.policies
        if version is not None and version == policies.version:
            return  # our own write, or one already loaded
        try:
            policies.reload()
            self._failed_version = None
        except PolicyError as error:
            if isinstance(error.original_error, SQLAlchemyError):
                # The store could not be read (a lost connection, a restart), which says nothing
                # about the policy: raised, so that the watcher retries at its next version
                # read instead of taking this version as seen and staying stale until the next.
                raise
            self._log_failed(version, error)
        except GuardError as error:
            self._log_failed(version, error)

    def _log_failed(self, version: int | None, error: GuardError) -> None:
        # The last good policy stays in force; say so once per bad version, not per poll.
        if self._failed_version != version or version is None:
            log.error("policy reload failed, keeping the previous policy: %s", error)
        self._failed_version = version

    def functions_changed(self) -> None:
        """A matcher function was registered: rebuild the engine if this app is serving."""
        if self._policies is not None:
            self._policies.functions = dict(self.guard.functions)
            self._policies.rebuild()

    def reload_policy(self) -> None:
        """Re-read the policy from its store, then swap; on any error the current one stays."""
        self.policies.reload(force=True)


def _weak(state: AppState, method: str) -> Callable[[Any], None]:
    """``state.<method>`` through a weak reference: a no-op once the state is gone, so a
    watcher thread or the user store does not keep a discarded app's state alive."""
    ref = weakref.ref(state)

    def call(argument: Any) -> None:
        alive = ref()
        if alive is not None:
            getattr(alive, method)(argument)

    return call
