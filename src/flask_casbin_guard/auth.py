"""Login, logout and token endpoints, as a blueprint the app registers itself.

    app.register_blueprint(auth_blueprint(), url_prefix="/auth")

``POST /login`` (JSON or form: ``login``, ``password``) starts a cookie session and returns its
CSRF token, unless the browser says a cross-site page sent it (``Sec-Fetch-Site``, ``Origin``:
login CSRF, 403); ``POST /logout`` ends it for good; ``GET /csrf`` repeats the token. For API
clients, ``POST /token`` trades a login and password for an access and a refresh token of one
family, ``POST /refresh`` trades a refresh token for a new pair (the old one is revoked),
``POST /revoke`` revokes a token.
``POST /register`` creates a user of the built-in store when ``GUARD_REGISTRATION`` is true (404
otherwise), with ``GUARD_DEFAULT_ROLES``; it answers the same, in the same time, whether the login
was free, taken or a role name, and is limited per client (``GUARD_REGISTRATION_RATE_LIMIT``).
Without the ``session`` scheme, ``/login``, ``/logout`` and ``/csrf`` answer 404 (decided per
request: they are registered whatever ``GUARD_AUTH`` says when the blueprint is); a user store
that cannot be read is a 503. Every password check is rate limited like the other password schemes.
Credentials in the query string are a 400 on every endpoint here.
Every answer carries ``Cache-Control: no-store`` and ``Pragma: no-cache``: tokens and CSRF tokens
must not be cached.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from flask import Request, Response
from flask.sessions import SessionMixin
from werkzeug.exceptions import NotFound

from .app import Blueprint
from .authn.passwords import check_password_policy
from .authn.presence import absent, only_with
from .authn.session import check_same_origin, csrf_token
from .errors import ParameterError, ParamIssue, PasswordPolicyError, PolicyError, PolicyUnavailable
from .extension import CasbinGuard
from .identity import is_safe_login
from .params.markers import Param
from .pipeline import current_state


def auth_blueprint(*, name: str = "guard_auth") -> Blueprint:
    """The authentication endpoints (``GUARD_AUTH`` must enable ``session`` for cookies)."""
    bp = Blueprint(name, __name__)
    bp.after_request(_never_stored)
    bp.url_value_preprocessor(_sessions_enabled)

    @bp.post("/login", authorize="OPEN")
    @only_with("session")
    def login(
        guard: CasbinGuard,
        session: SessionMixin,
        request: Request,
        user: Annotated[str, Param("login")],
        password: str,
    ) -> dict[str, Any]:
        _from_the_body_only(request)
        check_same_origin(request)  # before the password check: a refusal counts no failure
        with _store_needed():
            identity = guard.check_password(user, password, request.remote_addr)
        return {"login": identity.login, "csrf_token": guard.start_session(session, identity.login)}

    @bp.post("/logout", authorize="AUTH", authn="session")
    @only_with("session")
    def logout(guard: CasbinGuard, session: SessionMixin) -> dict[str, Any]:
        return {"logged_out": guard.end_session(session)}

    @bp.get("/csrf", authorize="AUTH", authn="session")
    @only_with("session")
    def csrf(session: SessionMixin) -> dict[str, Any]:
        return {"csrf_token": csrf_token(session)}

    @bp.post("/token", authorize="OPEN")
    def token(
        guard: CasbinGuard, request: Request, user: Annotated[str, Param("login")], password: str
    ) -> dict[str, Any]:
        _from_the_body_only(request)
        with _store_needed():
            identity = guard.check_password(user, password, request.remote_addr)
        return _tokens(*guard.create_token_pair(identity.login))

    @bp.post("/refresh", authorize="OPEN")
    def refresh(guard: CasbinGuard, request: Request, refresh_token: str) -> dict[str, Any]:
        _from_the_body_only(request)
        with _store_needed():
            return _tokens(*guard.refresh(refresh_token))

    @bp.post("/revoke", authorize="OPEN")
    def revoke(guard: CasbinGuard, request: Request, token: str) -> dict[str, Any]:
        _from_the_body_only(request)
        with _store_needed():
            guard.revoke_token(token)
        return {"revoked": True}

    pace = _SteadyPace()

    @bp.post("/register", authorize="OPEN")
    def register(
        guard: CasbinGuard, request: Request, user: Annotated[str, Param("login")], password: str
    ) -> tuple[dict[str, Any], int]:
        started = time.perf_counter()
        if not guard.registration_open:
            raise NotFound()
        _from_the_body_only(request)
        state = current_state()
        if state.limiter is not None:
            state.limiter.registration(request.remote_addr)
        # Everything that can refuse the request is decided first, on the request alone: a weak
        # password must be a 400 whether the login is free, taken or a role name.
        settings = state.settings
        if not is_safe_login(user):
            raise ParameterError([ParamIssue("login", "json", "a printable login without commas")])
        try:
            check_password_policy(
                password,
                settings.password_min_length,
                settings.password_check,
                settings.password_max_length,
            )
        except PasswordPolicyError as error:
            raise ParameterError([ParamIssue("password", "json", str(error))]) from None
        # One hash, before the login is looked at: a taken or role-named login then costs
        # exactly what a creation costs, and no outcome hashes twice.
        password_hash = guard.hasher.hash(password)
        try:
            with _store_needed():
                guard._create_account(user, password_hash, (), True)
        except ValueError:
            pass  # taken, a role name or another refusal: the answer must not say which
        pace.wait(started)
        return {"status": "accepted"}, 202

    return bp


#: the fields these endpoints read, which must never come from the URL: access logs, proxies,
#: browser histories and Referer headers keep URLs
_BODY_ONLY = ("login", "password", "refresh_token", "token")


def _from_the_body_only(request: Request) -> None:
    """Refuse credentials in the query string, even beside a body holding them too.

    Refused rather than ignored: a client sending them there must learn that it leaks them.
    """
    found = [name for name in _BODY_ONLY if name in request.args]
    if found:
        expected = "in the request body (JSON or form), never in the URL"
        raise ParameterError([ParamIssue(name, "query", expected) for name in found])


def _tokens(access: str, refresh: str) -> dict[str, Any]:
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}


def _sessions_enabled(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Without the ``session`` scheme (a bearer-only app, maybe without ``SECRET_KEY``) the
    session endpoints could only fail: they answer 404, as if they were not registered.

    Decided per request, not at registration: subclass mode reads GUARD_AUTH lazily. A URL
    value preprocessor runs before every other hook, so the guard never gets to refuse
    ``authn="session"`` on a route of an app that does not enable it (a configuration error).
    """
    state = current_state()
    view = state.view_functions.get(endpoint) if endpoint is not None else None
    if absent(view, state.settings.auth):
        raise NotFound()


@contextmanager
def _store_needed() -> Iterator[None]:
    """A user store that cannot be read or written (a database outage) is a 503, never a 500."""
    try:
        yield
    except PolicyError as error:
        raise PolicyUnavailable(f"user store: {error}") from None


class _SteadyPace:
    """Delays answers to the slowest of the recent ones, so their time tells nothing.

    Creating a user (its roles written to the policy) takes longer than finding the login
    taken: equal work covers the hash, this covers the rest.
    """

    #: answers remembered; the longest wait is bounded so a stalled database is soon forgotten
    size, longest = 32, 2.0

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.size)
        self._lock = threading.Lock()

    def wait(self, started: float) -> None:
        elapsed = time.perf_counter() - started
        with self._lock:
            self._recent.append(min(elapsed, self.longest))
            target = max(self._recent)
        if target > elapsed:
            time.sleep(target - elapsed)


def _never_stored(response: Response) -> Response:
    # Every answer here may carry a token, a CSRF token or a session cookie: no browser or proxy
    # cache may keep one (Pragma for HTTP/1.0 caches).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
