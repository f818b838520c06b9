"""Login, logout and token endpoints, as a blueprint the app registers itself.

    app.register_blueprint(auth_blueprint(), url_prefix="/auth")

``POST /login`` (JSON or form: ``login``, ``password``) starts a cookie session and returns its
CSRF token; ``POST /logout`` ends it for good; ``GET /csrf`` repeats the token (these two exist
only when ``GUARD_AUTH`` enables ``session``). For API clients,
``POST /token`` trades a login and password for an access and a refresh token, ``POST /refresh``
trades a refresh token for a new pair (the old one is revoked), ``POST /revoke`` revokes a token.
``POST /register`` creates a user of the built-in store when ``GUARD_REGISTRATION`` is true (404
otherwise), with ``GUARD_DEFAULT_ROLES``; it answers the same whether the login was free or not.
Every password check is rate limited like the other password schemes.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from flask import Request
from flask.sansio.blueprints import BlueprintSetupState
from flask.sessions import SessionMixin
from werkzeug.exceptions import NotFound

from .app import Blueprint
from .authn.session import csrf_token
from .config import GuardSettings
from .errors import ParameterError, ParamIssue, PasswordPolicyError
from .extension import EXTENSION_KEY, CasbinGuard
from .params.markers import Param
from .store.users import UserExists

#: GUARD_AUTH when unset
_DEFAULT_AUTH = next(f.default for f in dataclasses.fields(GuardSettings) if f.name == "auth")


def auth_blueprint(*, name: str = "guard_auth") -> Blueprint:
    """The authentication endpoints (``GUARD_AUTH`` must enable ``session`` for cookies)."""
    bp = Blueprint(name, __name__)

    @bp.post("/login", authorize="OPEN")
    def login(
        guard: CasbinGuard,
        session: SessionMixin,
        request: Request,
        user: Annotated[str, Param("login")],
        password: str,
    ) -> dict[str, Any]:
        identity = guard.check_password(user, password, request.remote_addr)
        return {"login": identity.login, "csrf_token": guard.start_session(session, identity.login)}

    @bp.post("/logout", authorize="AUTH", authn="session")
    def logout(guard: CasbinGuard, session: SessionMixin) -> dict[str, Any]:
        return {"logged_out": guard.end_session(session)}

    @bp.get("/csrf", authorize="AUTH", authn="session")
    def csrf(session: SessionMixin) -> dict[str, Any]:
        return {"csrf_token": csrf_token(session)}

    _only_with_session(bp, 2)

    @bp.post("/token", authorize="OPEN")
    def token(
        guard: CasbinGuard, request: Request, user: Annotated[str, Param("login")], password: str
    ) -> dict[str, Any]:
        identity = guard.check_password(user, password, request.remote_addr)
        return _tokens(
            guard.create_token(identity.login), guard.create_refresh_token(identity.login)
        )

    @bp.post("/refresh", authorize="OPEN")
    def refresh(guard: CasbinGuard, refresh_token: str) -> dict[str, Any]:
        return _tokens(*guard.refresh(refresh_token))

    @bp.post("/revoke", authorize="OPEN")
    def revoke(guard: CasbinGuard, token: str) -> dict[str, Any]:
        guard.revoke_token(token)
        return {"revoked": True}

    @bp.post("/register", authorize="OPEN")
    def register(
        guard: CasbinGuard, user: Annotated[str, Param("login")], password: str
    ) -> tuple[dict[str, Any], int]:
        if not guard.registration_open:
            raise NotFound()
        try:
            guard.create_user(user, password)
        except UserExists:
            pass  # the same answer either way: registration must not reveal who exists
        except PasswordPolicyError as error:
            raise ParameterError([ParamIssue("password", "json", str(error))]) from None
        except ValueError as error:
            raise ParameterError([ParamIssue("login", "json", str(error))]) from None
        return {"status": "accepted"}, 202

    return bp


def _only_with_session(bp: Blueprint, count: int) -> None:
    """The last ``count`` routes of ``bp`` exist only on apps whose GUARD_AUTH enables
    ``session``: elsewhere their ``authn="session"`` could never be met, and the guard refuses
    to serve an app with such a route."""
    recorded = bp.deferred_functions[-count:]
    del bp.deferred_functions[-count:]

    def register(state: BlueprintSetupState) -> None:
        guard = state.app.extensions.get(EXTENSION_KEY)
        options = guard.options if isinstance(guard, CasbinGuard) else {}
        auth = options.get("auth", state.app.config.get("GUARD_AUTH", _DEFAULT_AUTH))
        if "session" in ([auth] if isinstance(auth, str) else auth):
            for function in recorded:
                function(state)

    bp.record(register)


def _tokens(access: str, refresh: str) -> dict[str, Any]:
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}
