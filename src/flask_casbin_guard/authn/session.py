"""Cookie sessions after a login endpoint, with CSRF protection and real logout.

Flask's session cookie is signed, not stored: on its own a copied cookie stays valid until it
expires, even after logout. So each login gets a random session id, logout revokes that id
server-side, and the per-user revocation stamp (password change, disabled account) applies too.
Unsafe methods authenticated by the cookie must echo the session's CSRF token in a header (or a
``csrf_token`` form field); requests authenticated by a header (bearer, basic, API key) need none,
since a browser never adds those on its own.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed, CsrfFailed
from ..identity import Identity, is_safe_login

#: the key of the guard's data inside the Flask session
SESSION_KEY = "_casbin_guard"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

Session = MutableMapping[str, Any]


class SessionScheme:
    """Reads the identity a login endpoint put in the Flask session.

    :param session: returns the current request's session (Flask's ``session``).
    :param lifetime: seconds a session lasts after login, whatever its activity.
    """

    name = "session"

    def __init__(self, session: Callable[[], Session], lifetime: float) -> None:
        self._session = session
        self._lifetime = lifetime

    def challenge(self) -> None:
        return None

    def authenticate(self, request: Request) -> Identity | None:
        data = self._session().get(SESSION_KEY)
        if data is None:
            return None
        if not isinstance(data, dict) or not _well_formed(data):
            raise AuthenticationFailed("session: malformed session")
        if time.time() - data["iat"] > self._lifetime:
            raise AuthenticationFailed("session: expired", login=data["login"])
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER) or _form_token(request)
            if not sent or not hmac.compare_digest(sent.encode(), data["csrf"].encode()):
                raise CsrfFailed("session: missing or wrong CSRF token")
        # The session id is the "jti" of revocation checks; iat is checked against stamps.
        claims = {"jti": data["sid"], "iat": data["iat"]}
        return Identity(login=data["login"], scheme=self.name, claims=claims)


class RequestSchemeSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions, marked ``Secure`` on every HTTPS request when asked to.

    ``SESSION_COOKIE_SECURE`` is one value for the whole app, decided at start-up: an app
    served over HTTPS whose ``PREFERRED_URL_SCHEME`` was left at ``http`` would send its login
    session in a cookie a browser also sends over plain HTTP. This interface adds ``Secure``
    whenever the request itself came over HTTPS (``request.is_secure``, after the app's proxy
    handling such as ``ProxyFix``), for apps where ``auto(app)`` says the choice is the guard's.

    :param is_secure: whether the current request came over HTTPS (``False`` outside one).
    :param auto: whether the app left ``GUARD_SESSION_SECURE`` unset with the ``session`` scheme.
    """

    def __init__(self, is_secure: Callable[[], bool], auto: Callable[[Flask], bool]) -> None:
        self._is_secure = is_secure
        self._auto = auto

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (self._auto(app) and self._is_secure())


def start_session(session: Session, login: str) -> str:
    """Log ``login`` in: a fresh session (no fixation), a new id and CSRF token; returns it."""
    session.clear()
    csrf = secrets.token_urlsafe(32)
    session[SESSION_KEY] = {
        "login": login,
        "sid": secrets.token_urlsafe(16),
        "iat": time.time(),
        "csrf": csrf,
    }
    return csrf


def end_session(session: Session) -> tuple[str, float] | None:
    """Log out: forget the session; returns ``(session id, iat)`` to revoke, if any."""
    data = session.get(SESSION_KEY)
    session.clear()
    if isinstance(data, dict) and _well_formed(data):
        return data["sid"], data["iat"]
    return None


def check_same_origin(request: Request) -> None:
    """Refuse a login a cross-site page made the browser send (login CSRF).

    A session started by someone else's form would log the victim in as the attacker, whose
    account then receives what the victim types. No CSRF token can exist before the login, so
    the browser's own word decides, as Go's ``http.CrossOriginProtection`` does: the Fetch
    metadata header ``Sec-Fetch-Site`` when sent (only ``same-origin`` and ``none``, a typed
    URL, pass: ``same-site`` is a sibling subdomain, not this app), else ``Origin``, whose host
    must be this request's. Requests with neither come from clients that are not browsers (or
    from browsers older than 2020), for which no cookie could be planted.

    :raises CsrfFailed: for a cross-origin login (403).
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise CsrfFailed(f"login: Sec-Fetch-Site is {site[:20]!r}")
        return
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        raise CsrfFailed(f"login: cross-origin request from {origin[:100]!r}")


def csrf_token(session: Session) -> str | None:
    data = session.get(SESSION_KEY)
    return data["csrf"] if isinstance(data, dict) and _well_formed(data) else None


def _well_formed(data: dict[str, Any]) -> bool:
    return (
        isinstance(data.get("login"), str)
        and is_safe_login(data["login"])
        and isinstance(data.get("sid"), str)
        and isinstance(data.get("csrf"), str)
        and _is_timestamp(data.get("iat"))
    )


def _is_timestamp(value: Any) -> bool:
    # NaN or infinity would never expire nor predate a revocation stamp, and an int too large
    # for a float would raise: only a real, finite time counts (compared exactly, no float()).
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**40


def _form_token(request: Request) -> str | None:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = request.form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None
