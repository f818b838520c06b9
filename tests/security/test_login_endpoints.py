"""The login endpoints under attack (issue 16, "Trust II"): every attack goes through HTTP.

Each test attacks ``/auth/...`` the way a hostile client would (the Flask test client; real
threads where concurrency matters) and states what must hold; docs/security.md, "Login endpoints
under attack", lists them.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

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


def test_an_unreachable_rate_limit_storage_is_a_503_not_a_pass(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    # Nothing listens on port 1: every Redis call is refused at once.
    app = store_app(guard_config, tmp_path, GUARD_RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0")
    client = app.test_client()
    body = {"login": "erin", "password": STORE_PASSWORD}
    for path in ("/auth/token", "/auth/login", "/auth/register"):
        response = client.post(path, json=body)
        assert response.status_code == 503, (path, response.status_code)
        assert "127.0.0.1" not in response.get_data(as_text=True)


def test_session_endpoints_of_a_bearer_only_app_are_not_there(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_AUTH=["bearer"], SECRET_KEY=None)
    client = app.test_client()
    body = {"login": "alice", "password": PASSWORDS["alice"]}
    for method, path in (("POST", "/auth/login"), ("POST", "/auth/logout"), ("GET", "/auth/csrf")):
        response = client.open(path, method=method, json=body)
        assert response.status_code == 404, (path, response.status_code)
        assert "Set-Cookie" not in response.headers
    assert client.post("/auth/token", json=body).status_code == 200  # tokens still work


def test_session_endpoints_exist_when_the_blueprint_comes_before_the_configuration(
    guard_config: dict[str, Any],
) -> None:
    # An app factory registers blueprints, then applies the configuration: the guard reads it
    # lazily, so the session endpoints must not be decided at registration.
    app = Flask(__name__)
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")
    app.config.update(guard_config, SECRET_KEY=SECRET_KEY, GUARD_AUTH=["session"])
    app.route("/me", authorize="AUTH", endpoint="me")(lambda: "me")
    app.guard.validate(app)
    client = app.test_client()
    login = client.post("/auth/login", json={"login": "alice", "password": PASSWORDS["alice"]})
    assert login.status_code == 200
    assert client.get("/auth/csrf").json == {"csrf_token": login.json["csrf_token"]}
    logout = client.post("/auth/logout", headers={"X-CSRF-Token": login.json["csrf_token"]})
    assert (logout.status_code, logout.json) == (200, {"logged_out": True})
    assert client.get("/me").status_code == 401


def test_a_bearer_only_app_with_the_auth_blueprint_validates(guard_config: dict[str, Any]) -> None:
    # The session endpoints are registered everywhere but exist only with the session scheme:
    # their authn="session" names no missing scheme in an app that cannot serve them anyway.
    app = make_app(guard_config, GUARD_AUTH=["bearer"], SECRET_KEY=None)
    app.guard.validate(app)
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert result.exit_code == 0, result.output
    assert "NOT ENABLED" not in result.output


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


# --- failed-login limits that cannot be turned against users -----------------------------------


def token_from(client: FlaskClient, address: str, login: str, password: str) -> TestResponse:
    return client.post(
        "/auth/token",
        json={"login": login, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_a_bearer_only_app_limits_password_checks_at_its_token_endpoint(
    guard_config: dict[str, Any],
) -> None:
    app = make_app(guard_config, GUARD_AUTH=["bearer"], GUARD_AUTH_RATE_LIMIT="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert token_from(client, "192.0.2.1", "alice", "wrong-wrong-wrong").status_code == 401
    limited = token_from(client, "192.0.2.1", "alice", PASSWORDS["alice"])  # even the right one
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 61


def test_failures_from_one_address_never_lock_the_owner_out_elsewhere(
    guard_config: dict[str, Any],
) -> None:
    client = make_app(guard_config).test_client()  # the default limits
    attacker, owner = "203.0.113.5", "198.51.100.7"
    for _ in range(10):
        assert token_from(client, attacker, "alice", "wrong-wrong-wrong").status_code == 401
    assert token_from(client, attacker, "alice", PASSWORDS["alice"]).status_code == 429
    assert token_from(client, owner, "alice", PASSWORDS["alice"]).status_code == 200
    login = client.post(
        "/auth/login",
        json={"login": "alice", "password": PASSWORDS["alice"]},
        environ_base={"REMOTE_ADDR": owner},
    )
    assert login.status_code == 200


def test_the_per_login_ceiling_slows_guessers_but_never_blocks_the_owner(
    guard_config: dict[str, Any],
) -> None:
    app = make_app(
        guard_config,
        GUARD_AUTH_LOGIN_CEILING="5 per hour",
        GUARD_AUTH_SLOW_RATE_LIMIT="1 per minute",
    )
    client = app.test_client()
    botnet = [f"203.0.113.{i}" for i in range(1, 6)]
    for address in botnet:  # credential stuffing: one guess per address
        assert token_from(client, address, "alice", "wrong-wrong-wrong").status_code == 401
    # Past the ceiling, each address that failed waits a minute before its next guess...
    slowed = token_from(client, botnet[0], "alice", "another-wrong-guess")
    assert slowed.status_code == 429 and 1 <= int(slowed.headers["Retry-After"]) <= 61
    # ...a new address gets one guess a minute...
    assert token_from(client, "203.0.113.99", "alice", "wrong-wrong-wrong").status_code == 401
    assert token_from(client, "203.0.113.99", "alice", "wrong-again-wrong").status_code == 429
    # ...while alice, who has not failed, logs in at once, and bob is not slowed at all.
    assert token_from(client, "198.51.100.7", "alice", PASSWORDS["alice"]).status_code == 200
    assert token_from(client, botnet[0], "bob", PASSWORDS["bob"]).status_code == 200


def test_concurrent_wrong_guesses_never_get_more_than_the_limit(
    guard_config: dict[str, Any],
) -> None:
    limit, threads = 3, 12
    app = make_app(guard_config, GUARD_AUTH_RATE_LIMIT=f"{limit} per minute")
    start = threading.Barrier(threads)
    statuses: list[int] = []

    def guess(number: int) -> None:
        client = app.test_client()
        start.wait()
        response = token_from(client, "192.0.2.44", "alice", f"wrong-guess-{number:04}")
        statuses.append(response.status_code)

    workers = [threading.Thread(target=guess, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(statuses) == [401] * limit + [429] * (threads - limit)


def test_concurrent_right_passwords_past_the_limit_all_pass(guard_config: dict[str, Any]) -> None:
    # Attempts in flight are counted, but successes count nothing: a client sending more
    # requests at once than the limit (a page firing Basic-authenticated calls) waits, then passes.
    limit, threads = 3, 12
    app = make_app(guard_config, GUARD_AUTH_RATE_LIMIT=f"{limit} per minute")
    start = threading.Barrier(threads)
    statuses: list[int] = []

    def log_in() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(token_from(client, "192.0.2.45", "alice", PASSWORDS["alice"]).status_code)

    workers = [threading.Thread(target=log_in) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert statuses == [200] * threads


def test_ipv6_clients_are_counted_per_slash_64(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config, GUARD_AUTH_IP_RATE_LIMIT="3 per minute").test_client()
    # One host with a /64 picks a fresh address (and login) for each guess.
    for n, login in enumerate(("a-user", "b-user", "c-user"), start=1):
        response = token_from(client, f"2001:db8:1:2::{n}", login, "wrong-wrong-wrong")
        assert response.status_code == 401
    same_64 = token_from(client, "2001:db8:1:2:ffff:ffff:ffff:fff0", "alice", PASSWORDS["alice"])
    assert same_64.status_code == 429
    other_64 = token_from(client, "2001:db8:1:3::1", "alice", PASSWORDS["alice"])
    assert other_64.status_code == 200


# --- registration reveals nothing --------------------------------------------------------------


def register(client: FlaskClient, login: str, address: str = "192.0.2.10") -> TestResponse:
    return client.post(
        "/auth/register",
        json={"login": login, "password": STORE_PASSWORD},
        environ_base={"REMOTE_ADDR": address},
    )


def test_registration_answers_alike_for_free_taken_and_role_name_logins(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    app = store_app(guard_config, tmp_path, GUARD_REGISTRATION_RATE_LIMIT="")
    client = app.test_client()
    kinds = {
        "free": lambda n: f"new-user-{n}",
        "taken": lambda n: "erin",
        "role": lambda n: "employee",
    }
    register(client, "warm-up")  # the first request pays for imports and connections
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    bodies: set[tuple[int, bytes]] = set()
    for n in range(7):
        for kind, login in kinds.items():
            started = time.perf_counter()
            response = register(client, login(n))
            times[kind].append(time.perf_counter() - started)
            bodies.add((response.status_code, response.get_data()))
    assert bodies == {(202, b'{"status":"accepted"}\n')}, bodies
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    # An extra argon2 hash for one outcome doubles its time; 25% leaves room for a loaded machine.
    assert slowest - fastest < max(0.25 * fastest, 0.01), medians
    with app.app_context():
        assert app.guard.users.get("employee") is None  # a role name never becomes a user
        assert app.guard.users.get("new-user-0") is not None


def test_every_registration_outcome_hashes_the_password_once(
    guard_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Equal work is one hash whatever the login: a second one for some outcome is both a
    # timing signal and wasted argon2 time an attacker can ask for.
    app = store_app(guard_config, tmp_path, GUARD_REGISTRATION_RATE_LIMIT="")
    hasher = app.guard.hasher
    calls: list[str] = []
    original = hasher.hash

    def counting(password: str) -> str:
        calls.append(password)
        return original(password)

    monkeypatch.setattr(hasher, "hash", counting)
    client = app.test_client()
    counted = {}
    for kind, login in {"free": "new-user", "taken": "erin", "role": "employee"}.items():
        calls.clear()
        assert register(client, login).status_code == 202
        counted[kind] = len(calls)
    assert counted == {"free": 1, "taken": 1, "role": 1}


def test_registration_is_rate_limited_per_address(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    app = store_app(guard_config, tmp_path, GUARD_REGISTRATION_RATE_LIMIT="3 per hour")
    client = app.test_client()
    for login in ("erin", "employee", "new-user"):  # taken, role name, free: all count
        assert register(client, login).status_code == 202
    limited = register(client, "another-user")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 60
    assert register(client, "another-user", address="198.51.100.20").status_code == 202
    with app.app_context():
        assert app.guard.users.get("another-user") is not None  # created once, from there


def test_registration_takes_credentials_from_the_body_only(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    app = store_app(guard_config, tmp_path)
    client = app.test_client()
    response = client.post(
        "/auth/register", query_string={"password": STORE_PASSWORD}, json={"login": "gus"}
    )
    assert response.status_code == 400
    assert response.json["details"] == [
        {
            "param": "password",
            "source": "query",
            "expected": "in the request body (JSON or form), never in the URL",
            "received": None,
        }
    ]
    with app.app_context():
        assert app.guard.users.get("gus") is None
