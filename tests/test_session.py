"""Cookie sessions and token endpoints (flask_casbin_guard.auth) over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import session
from flask.testing import FlaskClient

from conftest import PASSWORDS
from flask_casbin_guard import ConfigurationError, CurrentUser, Flask
from flask_casbin_guard.auth import auth_blueprint
from helpers import bearer

SECRET = "a-session-secret-of-more-than-32-characters"


def make_app(guard_config: dict[str, Any], **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, SECRET_KEY=SECRET, GUARD_AUTH=["bearer", "session"], **extra)
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")

    @app.get("/me", authorize="AUTH")
    def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    @app.post("/change", authorize="AUTH")
    def change(user: CurrentUser) -> dict[str, str]:
        return {"changed_by": user}

    @app.get("/visit", authorize="OPEN")
    def visit() -> str:
        session["visited"] = True  # an anonymous session before login
        return "ok"

    return app


@pytest.fixture
def app(guard_config: dict[str, Any]) -> Flask:
    return make_app(guard_config)


def login(client: FlaskClient, user: str = "alice", **kwargs: Any) -> str:
    response = client.post(
        "/auth/login", json={"login": user, "password": PASSWORDS[user]}, **kwargs
    )
    assert response.status_code == 200, response.json
    return str(response.json["csrf_token"])


def cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie("session")
    return found.value if found else None


def test_login_sets_a_hardened_cookie(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/auth/login", data={"login": "alice", "password": PASSWORDS["alice"]})
    assert response.status_code == 200 and response.json["login"] == "alice"
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    assert client.get("/me").json == {"user": "alice"}


@pytest.mark.parametrize(
    "extra", [{"GUARD_SESSION_SECURE": True}, {"PREFERRED_URL_SCHEME": "https"}]
)
def test_secure_cookie_when_configured(guard_config: dict[str, Any], extra: dict[str, Any]) -> None:
    client = make_app(guard_config, **extra).test_client()
    response = client.post("/auth/login", json={"login": "alice", "password": PASSWORDS["alice"]})
    assert "Secure" in response.headers["Set-Cookie"]


def test_login_starts_a_new_session(app: Flask) -> None:
    client = app.test_client()
    client.get("/visit")
    before = cookie(client)
    assert before is not None
    login(client)
    assert cookie(client) not in (None, before)
    with client.session_transaction() as data:
        assert "visited" not in data  # the pre-login session is gone (no fixation)


def test_unknown_user_and_wrong_password_fail_alike(app: Flask) -> None:
    client = app.test_client()
    wrong = client.post("/auth/login", json={"login": "alice", "password": "nope-nope-nope"})
    unknown = client.post("/auth/login", json={"login": "zed", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data() == unknown.get_data()
    assert "Set-Cookie" not in wrong.headers


def test_csrf_for_unsafe_methods_by_cookie(app: Flask) -> None:
    client = app.test_client()
    token = login(client)
    refused = client.post("/change")
    assert refused.status_code == 403 and refused.json["error"] == "csrf_failed"
    assert client.post("/change", headers={"X-CSRF-Token": token + "x"}).status_code == 403
    assert client.post("/change", headers={"X-CSRF-Token": token}).json == {"changed_by": "alice"}
    assert client.post("/change", data={"csrf_token": token}).status_code == 200
    assert client.get("/auth/csrf").json == {"csrf_token": token}
    with app.app_context():
        access = app.guard.create_token("bob")
    # A request authenticated by a header needs no CSRF token: browsers never add it.
    assert app.test_client().post("/change", headers=bearer(access)).json == {"changed_by": "bob"}


def test_logout_really_invalidates(app: Flask) -> None:
    client = app.test_client()
    token = login(client)
    copied = cookie(client)
    assert client.get("/auth/logout").status_code == 405  # never by GET
    assert client.post("/auth/logout").status_code == 403  # CSRF-protected
    assert client.post("/auth/logout", headers={"X-CSRF-Token": token}).json == {"logged_out": True}
    assert client.get("/me").status_code == 401
    attacker = app.test_client()
    attacker.set_cookie("session", copied or "")
    assert attacker.get("/me").status_code == 401  # a copied cookie is revoked server-side


def test_sessions_expire(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config, GUARD_SESSION_LIFETIME=0.2).test_client()
    login(client)
    assert client.get("/me").status_code == 200
    time.sleep(0.3)
    assert client.get("/me").status_code == 401


def test_revoking_a_user_ends_sessions_and_tokens_issued_before(app: Flask) -> None:
    client = app.test_client()
    login(client)
    with app.app_context():
        token = app.guard.create_token("alice")
        app.guard.revoke_user("alice")
    assert client.get("/me").status_code == 401
    assert app.test_client().get("/me", headers=bearer(token)).status_code == 401
    login(client)  # logging in again right away works
    assert client.get("/me").json == {"user": "alice"}
    with app.app_context():
        fresh = app.guard.create_token("alice")
    assert app.test_client().get("/me", headers=bearer(fresh)).status_code == 200


def test_session_needs_a_secret_key(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    app.config["SECRET_KEY"] = None
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        app.test_client().get("/me")


def test_token_endpoints(app: Flask) -> None:
    client = app.test_client()
    tokens = client.post("/auth/token", json={"login": "bob", "password": PASSWORDS["bob"]}).json
    assert tokens["token_type"] == "Bearer"
    assert client.get("/me", headers=bearer(tokens["access_token"])).json == {"user": "bob"}
    # A refresh token is never accepted where an access token is expected.
    assert client.get("/me", headers=bearer(tokens["refresh_token"])).status_code == 401
    renewed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json
    assert client.get("/me", headers=bearer(renewed["access_token"])).status_code == 200
    # Rotation: the used refresh token is revoked.
    replay = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": renewed["access_token"]}).status_code
        == 401
    )
    assert client.post("/auth/revoke", json={"token": renewed["access_token"]}).json == {
        "revoked": True
    }
    assert client.get("/me", headers=bearer(renewed["access_token"])).status_code == 401
    assert client.post("/auth/revoke", json={"token": "garbage"}).status_code == 401


def test_login_endpoints_are_rate_limited(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config, GUARD_AUTH_RATE_LIMIT="2 per minute").test_client()
    for _ in range(2):
        client.post("/auth/login", json={"login": "carol", "password": "wrong-wrong-wrong"})
    limited = client.post("/auth/token", json={"login": "carol", "password": PASSWORDS["carol"]})
    assert limited.status_code == 429


def test_tokens_without_iat_or_jti_cannot_escape_revocation(app: Flask) -> None:
    import jwt

    from helpers import JWT_SECRET

    # Tokens from another issuer may lack iat and jti: they must not outlive a revocation.
    foreign = jwt.encode(
        {"sub": "alice", "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256"
    )
    client = app.test_client()
    assert client.get("/me", headers=bearer(foreign)).status_code == 200
    assert (
        client.post("/auth/revoke", json={"token": foreign}).status_code == 401
    )  # no jti: said, not a 500
    refresh = jwt.encode(
        {"sub": "alice", "exp": int(time.time()) + 600, "type": "refresh"},
        JWT_SECRET,
        algorithm="HS256",
    )
    assert client.post("/auth/refresh", json={"refresh_token": refresh}).status_code == 401
    with app.app_context():
        app.guard.revoke_user("alice")
    assert client.get("/me", headers=bearer(foreign)).status_code == 401
