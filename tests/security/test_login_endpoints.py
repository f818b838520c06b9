"""The login endpoints under attack (issue 16, "Trust II"): every attack goes through HTTP.

Each test attacks ``/auth/...`` the way a hostile client would (the Flask test client; real
threads where concurrency matters) and states what must hold; docs/security.md, "Login endpoints
under attack", lists them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from conftest import PASSWORDS
from flask_casbin_guard import Flask
from flask_casbin_guard.auth import auth_blueprint

SECRET_KEY = "a-session-secret-of-more-than-32-characters"


def make_app(guard_config: dict[str, Any], **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, SECRET_KEY=SECRET_KEY, GUARD_AUTH=["bearer", "session"])
    app.config.update(extra)
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")
    app.route("/me", methods=["GET", "POST"], authorize="AUTH", endpoint="me")(lambda: "me")
    return app


# --- a password that cannot be encoded ---------------------------------------------------------


def test_an_unencodable_password_is_wrong_and_raises_no_alarm(
    guard_config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(guard_config, GUARD_AUTH=["bearer", "session", "param"]).test_client()
    # json.dumps escapes the lone surrogate as "\ud800", as a hostile client would send it.
    with caplog.at_level(logging.DEBUG):
        for path in ("/auth/token", "/auth/login", "/me"):
            for login in ("alice", "nobody"):
                body = {"login": login, "password": "\ud800" + PASSWORDS["alice"]}
                assert client.post(path, json=body).status_code == 401, path
    alarms = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not alarms, [r.getMessage() for r in alarms]


# --- answers that carry credentials are never cached -------------------------------------------


def test_answers_carrying_credentials_are_never_stored(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config).test_client()
    body = {"login": "alice", "password": PASSWORDS["alice"]}
    tokens = client.post("/auth/token", json=body)
    answers = {
        "token": tokens,
        "refresh": client.post(
            "/auth/refresh", json={"refresh_token": tokens.json["refresh_token"]}
        ),
        "login": client.post("/auth/login", json=body),
        "csrf": client.get("/auth/csrf"),
        "refused": client.post("/auth/token", json={**body, "password": "wrong-wrong-wrong"}),
    }
    for name, response in answers.items():
        assert response.status_code in (200, 401), name
        assert response.headers.get("Cache-Control") == "no-store", name
        assert response.headers.get("Pragma") == "no-cache", name


# --- credentials in the URL --------------------------------------------------------------------


def test_credentials_in_the_query_string_are_refused(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config).test_client()
    good = {"login": "alice", "password": PASSWORDS["alice"]}
    refresh = client.post("/auth/token", json=good).json["refresh_token"]
    attempts = [
        ("/auth/token", good, None),  # everything in the URL
        ("/auth/login", good, None),
        ("/auth/token", {"password": good["password"]}, {"login": "alice"}),  # body + URL
        ("/auth/login", {"password": good["password"]}, {"login": "alice"}),
        ("/auth/token", {"password": "ignored"}, good),  # the URL's copy would be ignored
        ("/auth/refresh", {"refresh_token": refresh}, None),
        ("/auth/revoke", {"token": refresh}, None),
    ]
    for path, query, form in attempts:
        response = client.post(path, query_string=query, data=form)
        assert response.status_code == 400, (path, query)
        assert response.json["error"] == "bad_request"
        issues = {(d["param"], d["source"]) for d in response.json["details"]}
        assert issues == {(name, "query") for name in query}, issues
        assert refresh not in response.get_data(as_text=True)
        assert "Set-Cookie" not in response.headers
    # The refresh token refused above was neither used nor revoked: it still works from a body.
    assert client.post("/auth/refresh", json={"refresh_token": refresh}).status_code == 200


# --- the auth endpoints never answer 500 -------------------------------------------------------


def store_app(guard_config: dict[str, Any], tmp_path: Path, **extra: Any) -> Flask:
    """An app on the built-in user store (SQLite), with registration open and user erin."""
    app = make_app(
        guard_config,
        GUARD_GET_USER_PASS=None,
        GUARD_POLICY=f"sqlite:///{tmp_path / 'users.db'}",
        GUARD_REGISTRATION=True,
        GUARD_DEFAULT_ROLES=["employee"],
        **extra,
    )
    with app.app_context():
        app.guard.create_user("erin", STORE_PASSWORD)
    return app


STORE_PASSWORD = "a long enough password"


def test_an_unreadable_user_store_is_a_503_on_every_auth_endpoint(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    app = store_app(guard_config, tmp_path)
    client = app.test_client()
    body = {"login": "erin", "password": STORE_PASSWORD}
    tokens = client.post("/auth/token", json=body).json
    with app.app_context(), app.guard.users.engine.begin() as connection:
        # As good as the database gone, for the users and the revoked tokens alike.
        connection.exec_driver_sql("DROP TABLE guard_users")
        connection.exec_driver_sql("DROP TABLE guard_revoked_tokens")
    answers = {
        "token": client.post("/auth/token", json=body),
        "login": client.post("/auth/login", json=body),
        "register": client.post(
            "/auth/register", json={"login": "fay", "password": STORE_PASSWORD}
        ),
        "revoke": client.post("/auth/revoke", json={"token": tokens["access_token"]}),
        "refresh": client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
    }
    for name, response in answers.items():
        assert response.status_code == 503, (name, response.status_code)
        assert response.json["error"] == "policy_unavailable"
        text = response.get_data(as_text=True)
        assert "guard_" not in text and "sqlite" not in text.lower(), name


def test_session_endpoints_of_a_bearer_only_app_are_not_there(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_AUTH=["bearer"], SECRET_KEY=None)
    client = app.test_client()
    body = {"login": "alice", "password": PASSWORDS["alice"]}
    for method, path in (("POST", "/auth/login"), ("POST", "/auth/logout"), ("GET", "/auth/csrf")):
        response = client.open(path, method=method, json=body)
        assert response.status_code == 404, (path, response.status_code)
        assert "Set-Cookie" not in response.headers
    assert client.post("/auth/token", json=body).status_code == 200  # tokens still work


# --- login CSRF --------------------------------------------------------------------------------

CROSS_SITE = [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},  # a browser of today
    {"Origin": "https://evil.example"},  # a browser without Fetch metadata
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://sub.localhost", "Sec-Fetch-Site": "same-site"},  # a sibling subdomain
]


@pytest.mark.parametrize("headers", CROSS_SITE)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_cross_site_login_starts_no_session(
    guard_config: dict[str, Any], headers: dict[str, str], as_json: bool
) -> None:
    client = make_app(guard_config).test_client()
    body = {"login": "alice", "password": PASSWORDS["alice"]}
    # A hostile page's form (or, where CORS lets it, its fetch) posts the attacker's own login.
    sent = {"json": body} if as_json else {"data": body}
    response = client.post("/auth/login", headers=headers, **sent)
    assert response.status_code == 403
    assert response.json["error"] == "csrf_failed"
    assert "Set-Cookie" not in response.headers
    assert client.get("/me").status_code == 401  # the browser holds no session


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},  # typed in the address bar, a bookmark
        {},  # not a browser (curl, scripts): no cookie for an attacker to plant
    ],
)
def test_a_same_origin_login_starts_a_session(
    guard_config: dict[str, Any], headers: dict[str, str]
) -> None:
    client = make_app(guard_config).test_client()
    body = {"login": "alice", "password": PASSWORDS["alice"]}
    assert client.post("/auth/login", headers=headers, data=body).status_code == 200
    assert client.get("/me").status_code == 200
