"""Per-app state of a guard: validated settings, the policy engine, the authentication chain."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.wrappers import Request

from .authn.base import Scheme
from .authn.basic import BasicScheme
from .authn.bearer import BearerScheme
from .authn.chain import AuthChain
from .authz.engine import EngineHolder
from .config import GuardSettings
from .errors import ConfigurationError
from .identity import Identity
from .loading import check_unsupported, load_engine
from .pipeline import GuardedRoute
from .types import PasswordGetter

if TYPE_CHECKING:
    from .extension import CasbinGuard

#: schemes named in API.md that later versions provide; refused clearly until then
PLANNED_SCHEMES = frozenset({"session", "apikey", "param", "remote_user", "fake"})


class AppState:
    """What one guard knows about one app: settings, policy engine, authentication chain."""

    def __init__(self, guard: CasbinGuard, app: Flask) -> None:
        self.guard = guard
        self.config = app.config
        self.root_path = app.root_path
        self.app_name = app.name
        self._settings: GuardSettings | None = None
        self._holder: EngineHolder | None = None
        self._chain: AuthChain | None = None
        self._bearer: BearerScheme | None = None
        self._ready = False
        self._lock = threading.RLock()
        #: compiled default declarations of endpoints registered without one
        self.defaults: dict[str, GuardedRoute] = {}

    # -- set-up ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Read ``GUARD_*`` and load the policy (once; raises on any configuration error)."""
        with self._lock:
            if self._settings is not None:
                return
            settings = GuardSettings.from_mapping(self.config, self.guard.options)
            check_unsupported(settings)
            holder = EngineHolder(load_engine(settings, self.root_path, self.guard.functions))
            realm = settings.realm or self.app_name
            bearer = None
            if "bearer" in settings.auth or settings.jwt_secret or settings.jwt_public_key:
                bearer = BearerScheme(settings, realm)
            schemes = [self._scheme(name, settings, realm, bearer) for name in settings.auth]
            self._chain = AuthChain(schemes)
            self._bearer, self._holder, self._settings = bearer, holder, settings

    def ensure_ready(self) -> None:
        """:meth:`prepare`, plus the checks that must wait for decorators registered later."""
        if self._ready:
            return
        with self._lock:
            self.prepare()
            if "basic" in self.settings.auth and self.password_getter is None:
                raise ConfigurationError(
                    "GUARD_AUTH enables 'basic' but no password getter is set: "
                    "use GUARD_GET_USER_PASS or @guard.password_getter"
                )
            self._ready = True

    def _scheme(
        self, name: str, settings: GuardSettings, realm: str, bearer: BearerScheme | None
    ) -> Scheme:
        if name == "basic":
            return BasicScheme(self._get_user_pass, self.guard.hasher, realm)
        if name == "bearer" and bearer is not None:
            return bearer
        if name in self.guard.schemes:
            return self.guard.schemes[name]
        if name in PLANNED_SCHEMES:
            raise ConfigurationError(f"GUARD_AUTH: scheme {name!r} is not available yet")
        raise ConfigurationError(f"GUARD_AUTH: unknown authentication scheme {name!r}")

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
        return self.settings.get_user_pass or self.guard.password_getter_func

    def _get_user_pass(self, login: str) -> str | None:
        getter = self.password_getter
        return getter(login) if getter is not None else None

    def authenticate(self, req: Request) -> Identity | None:
        self.ensure_ready()
        assert self._chain is not None  # noqa: S101 - set by prepare(), for mypy only
        return self._chain.authenticate(req)

    def reload_policy(self) -> None:
        """Re-read model and policy, then swap; on any error the current policy stays."""
        engine = load_engine(self.settings, self.root_path, self.guard.functions)
        self.holder.swap(engine)
