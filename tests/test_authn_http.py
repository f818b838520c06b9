"""Authentication over HTTP: per-route schemes, rate limits, rehash on login, audit and signals."""

from __future__ import annotations

import logging
import sys
import types
from typing import Any

import bcrypt
import flask
import pytest

from conftest import PASSWORDS
from flask_casbin_guard import CasbinGuard, CurrentUser, Flask, Identity, signals
from flask_casbin_guard.errors import ConfigurationError, PasswordPolicyError
from helpers import basic, bearer


def make_app(guard_config: dict[str, Any], restricted: bool | None = None, **extra: Any) -> Flask:
    """An app with per-route schemes; ``restricted``: add the routes whose ``authn=`` names
    schemes GUARD_AUTH may not enable (default: only when it enables them, else the whole app
    refuses to serve)."""
    app = Flask(__name__)
    app.config.update(guard_config, **extra)
    enabled = set(extra.get("GUARD_AUTH", ["bearer", "basic"]))

    @app.get("/any", authorize="AUTH")
    def any_scheme(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    if restricted or (restricted is None and "bearer" in enabled):

        @app.get("/token-only", authorize="AUTH", authn="bearer")
        def token_only(user: CurrentUser) -> dict[str, str]:
            return {"user": user}

    if restricted or (restricted is None and {"param", "basic"} <= enabled):

        @app.post("/login", authorize="AUTH", authn=["param", "basic"])
        def login(user: CurrentUser) -> dict[str, str]:
            return {"token": app.guard.create_token(user)}

    return app


@pytest.fixture
def app(guard_config: dict[str, Any]) -> Flask:
    return make_app(guard_config, GUARD_AUTH=["bearer", "basic", "param"])


def test_per_route_schemes(app: Flask) -> None:
    client = app.test_client()
    alice = basic("alice", PASSWORDS["alice"])
    assert client.get("/any", headers=alice).json == {"user": "alice"}
    assert client.get("/token-only", headers=alice).status_code == 401  # basic not accepted here
    form = {"login": "alice", "password": PASSWORDS["alice"]}
    token = client.post("/login", data=form).json["token"]
    assert client.get("/token-only", headers=bearer(token)).json == {"user": "alice"}
    assert client.post("/login", headers=bearer(token)).status_code == 401  # bearer not accepted


def test_per_route_scheme_must_be_enabled(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, restricted=True, GUARD_AUTH=["bearer", "basic"])
    with pytest.raises(ConfigurationError, match="'login': authn= .*param"):
        app.test_client().post("/login", data={"login": "alice", "password": "x"})
    with pytest.raises(ConfigurationError, match="'login': authn="):
        app.test_client().get("/any")  # the whole app refuses, not just that route


def test_authn_in_extension_mode_and_blueprints(guard_config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config)
    guard = CasbinGuard(app)
    app.get("/t")(guard.authorize("AUTH", authn="bearer")(lambda: "t"))
    client = app.test_client()
    assert client.get("/t", headers=basic("alice", PASSWORDS["alice"])).status_code == 401
    with app.app_context():
        token = guard.create_token("alice")
    assert client.get("/t", headers=bearer(token)).status_code == 200
    with pytest.raises(ConfigurationError, match="authn="):
        guard.authorize("AUTH", authn=[])(lambda: "never")


def test_failed_logins_are_limited_with_429(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_AUTH_RATE_LIMIT="3 per minute", GUARD_AUTH_IP_RATE_LIMIT="")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/any", headers=basic("alice", "wrong-password!")).status_code == 401
        assert client.get("/any", headers=basic("nobody", "wrong-password!")).status_code == 401
    known = client.get("/any", headers=basic("alice", PASSWORDS["alice"]))  # even the right one
    unknown = client.get("/any", headers=basic("nobody", "whatever-pass"))
    assert known.status_code == unknown.status_code == 429
    assert known.get_data() == unknown.get_data()
    assert known.json == {
        "error": "too_many_requests",
        "message": "too many failed attempts; retry later",
        "status": 429,
    }
    assert 1 <= int(known.headers["Retry-After"]) <= 61
    assert client.get("/any", headers=basic("bob", PASSWORDS["bob"])).status_code == 200


def test_failed_logins_are_limited_per_address(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_AUTH_RATE_LIMIT="", GUARD_AUTH_IP_RATE_LIMIT="4 per minute")
    client = app.test_client()
    for login in ("a-user", "b-user", "c-user", "d-user"):
        assert client.get("/any", headers=basic(login, "wrong-password!")).status_code == 401
    assert client.get("/any", headers=basic("alice", PASSWORDS["alice"])).status_code == 429
    other = app.test_client()
    response = other.get(
        "/any", headers=basic("alice", PASSWORDS["alice"]), environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )
    assert response.status_code == 200


def test_legacy_hashes_are_upgraded_on_login(guard_config: dict[str, Any]) -> None:
    stored = {"legacy": bcrypt.hashpw(b"legacy-password", bcrypt.gensalt(4)).decode()}
    app = make_app(guard_config, GUARD_GET_USER_PASS=stored.get)
    upgrades: list[tuple[str, str]] = []

    @app.guard.password_setter
    def save(login: str, new_hash: str) -> None:
        upgrades.append((login, new_hash))
        stored[login] = new_hash

    client = app.test_client()
    assert client.get("/any", headers=basic("legacy", "wrong-password")).status_code == 401
    assert upgrades == []  # a wrong password never triggers a rehash
    assert client.get("/any", headers=basic("legacy", "legacy-password")).status_code == 200
    assert [login for login, _ in upgrades] == ["legacy"]
    assert stored["legacy"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert client.get("/any", headers=basic("legacy", "legacy-password")).status_code == 200
    assert len(upgrades) == 1  # already current: no second rehash


def test_password_policy(guard_config: dict[str, Any]) -> None:
    app = make_app(
        guard_config, GUARD_PASSWORD_CHECK=lambda pw: "too common" if "password" in pw else None
    )
    with app.app_context():
        guard = app.guard
        with pytest.raises(PasswordPolicyError, match="at least 12"):
            guard.hash_password("short-pw")
        with pytest.raises(PasswordPolicyError, match="too common"):
            guard.hash_password("my-password-123")
        with pytest.raises(PasswordPolicyError, match="at most 128"):
            guard.hash_password("x" * 129)
        assert guard.hash_password("a" * 128).startswith("$argon2id$")
        assert guard.hash_password("correct horse battery").startswith("$argon2id$")
    app.config["GUARD_PASSWORD_MIN_LENGTH"] = 4
    with pytest.raises(ConfigurationError):
        make_app(guard_config, GUARD_PASSWORD_MIN_LENGTH=4).test_client().get("/any")


def test_remote_user_over_http(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_AUTH=["remote_user"], GUARD_TRUSTED_PROXIES=["10.0.0.2"])
    client = app.test_client()
    header = {"X-Remote-User": "carol"}
    via_proxy = client.get("/any", headers=header, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert via_proxy.json == {"user": "carol"}
    assert client.get("/any", headers=header).status_code == 401  # straight from a client


def test_fake_scheme_in_tests_only(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_AUTH=["fake"])
    assert app.test_client().get("/any", headers={"X-Fake-User": "dave"}).json == {"user": "dave"}
    prod = make_app(guard_config, GUARD_AUTH=["fake"], TESTING=False, PROPAGATE_EXCEPTIONS=True)
    with pytest.raises(ConfigurationError, match="app.testing"):
        prod.test_client().get("/any", headers={"X-Fake-User": "dave"})


def test_audit_records_and_signals(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flask_casbin_guard.audit")
    seen: list[tuple[str, dict[str, Any]]] = []

    def recorder(name: str) -> Any:
        return lambda sender, **data: seen.append((name, data))

    app.get("/staff", authorize="employee", endpoint="staff")(lambda: "x")
    client = app.test_client()
    with (
        signals.authenticated.connected_to(recorder("authenticated"), app),
        signals.authentication_failed.connected_to(recorder("failed"), app),
        signals.access_denied.connected_to(recorder("denied"), app),
    ):
        client.get("/any", headers=basic("alice", "secret-Pa55word"))
        client.get("/staff", headers=basic("dave", PASSWORDS["dave"]))
    assert [name for name, _ in seen] == ["failed", "authenticated", "denied"]
    assert seen[0][1]["login"] == "alice" and seen[2][1]["login"] == "dave"
    records = [r for r in caplog.records if hasattr(r, "guard")]
    assert [r.guard["event"] for r in records] == ["authentication_failed", "access_denied"]  # type: ignore[attr-defined]
    assert records[1].guard == {  # type: ignore[attr-defined]
        "event": "access_denied",
        "status": 403,
        "method": "GET",
        "endpoint": "staff",
        "path": "/staff",
        "user": "dave",
        "reason": "staff: 'dave' lacks role 'employee'",
    }
    assert "secret-Pa55word" not in caplog.text
    assert all("\n" not in r.getMessage() for r in records)


def test_audit_records_clip_client_chosen_text(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_casbin_guard.audit")
    login = "m" * 10_000
    client = app.test_client()
    assert client.get("/any", headers=basic(login, "wrong")).status_code == 401
    (record,) = [r for r in caplog.records if hasattr(r, "guard")]
    assert record.guard["user"] == "m" * 256 + "...[10000 characters]"  # type: ignore[attr-defined]
    assert len(record.getMessage()) < 2_000


def test_unknown_user_and_wrong_password_take_the_same_time(guard_config: dict[str, Any]) -> None:
    import statistics
    import time

    client = make_app(
        guard_config, GUARD_AUTH_RATE_LIMIT="", GUARD_AUTH_IP_RATE_LIMIT=""
    ).test_client()

    def timed(login: str) -> float:
        start = time.perf_counter()
        assert client.get("/any", headers=basic(login, "wrong-password!")).status_code == 401
        return time.perf_counter() - start

    timed("nobody"), timed("alice")  # warm-up: the dummy hash is made on first use
    unknown = statistics.median(timed("nobody") for _ in range(7))
    wrong = statistics.median(timed("alice") for _ in range(7))
    # Both verify one argon2id hash (~20-40 ms); a missing dummy hash would make it ~100x apart.
    assert 0.5 < unknown / wrong < 2.0, (unknown, wrong)


def test_passwords_over_72_bytes_never_match_a_truncating_hash(
    guard_config: dict[str, Any],
) -> None:
    long = "x" * 72
    stored = {"long": bcrypt.hashpw(long.encode(), bcrypt.gensalt(4)).decode()}
    client = make_app(guard_config, GUARD_GET_USER_PASS=stored.get).test_client()
    assert client.get("/any", headers=basic("long", long)).status_code == 200
    assert client.get("/any", headers=basic("long", long + "y" * 28)).status_code == 401


def test_schemes_from_entry_points(
    guard_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    from flask_casbin_guard.authn import registry

    # An installed package's entry point (the metadata lookup is the only thing replaced here).
    point = EntryPoint(
        "header", "test_authn_schemes_plugin:make_scheme", registry.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [point] if group == point.group else []
    )
    plugin = types.ModuleType("test_authn_schemes_plugin")

    class Header:
        name = "header"

        def authenticate(self, request: Any) -> Identity | None:
            login = request.headers.get("X-Plugin-User")
            return Identity(login, "header") if login else None

        def challenge(self) -> None:
            return None

    plugin.make_scheme = lambda settings: Header()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, plugin.__name__, plugin)
    client = make_app(guard_config, GUARD_AUTH=["header"]).test_client()
    assert client.get("/any", headers={"X-Plugin-User": "zoe"}).json == {"user": "zoe"}
