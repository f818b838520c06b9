"""The built-in user store over HTTP and the CLI: users, disabling, API keys, registration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bcrypt
import pytest
from flask.testing import FlaskClient

from flask_casbin_guard import CurrentUser, Flask
from flask_casbin_guard.auth import auth_blueprint
from flask_casbin_guard.errors import PasswordPolicyError
from flask_casbin_guard.store.users import UserExists
from helpers import basic, bearer

SECRET = "a-session-secret-of-more-than-32-characters"
PASSWORD = "a long enough password"


def make_app(guard_config: dict[str, Any], tmp_path: Path, **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        guard_config,
        **extra,
        SECRET_KEY=SECRET,
        GUARD_GET_USER_PASS=None,  # the built-in user store answers
        GUARD_POLICY=f"sqlite:///{tmp_path / 'users.db'}",
        GUARD_AUTH=["bearer", "basic", "session", "apikey"],
        GUARD_DEFAULT_ROLES=["employee"],
    )
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")

    @app.get("/me", authorize="employee")
    def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    with app.app_context():
        app.guard.create_user("erin", PASSWORD)
    return app


@pytest.fixture
def app(guard_config: dict[str, Any], tmp_path: Path) -> Flask:
    return make_app(guard_config, tmp_path)


def test_created_users_log_in_with_their_default_roles(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/me", headers=basic("erin", PASSWORD)).json == {"user": "erin"}
    assert client.get("/me", headers=basic("erin", "not the password")).status_code == 401
    with app.app_context():
        assert app.guard.policies.roles_for("erin") == ["employee"]
        with pytest.raises(UserExists):
            app.guard.create_user("erin", PASSWORD)
        with pytest.raises(ValueError, match="role name"):
            app.guard.create_user("employee", PASSWORD)
        with pytest.raises(PasswordPolicyError):
            app.guard.create_user("frank", "short")


def test_disabling_a_user_rejects_every_credential_at_the_next_request(app: Flask) -> None:
    client = app.test_client()
    session_client = app.test_client()
    session_client.post("/auth/login", json={"login": "erin", "password": PASSWORD})
    with app.app_context():
        token = app.guard.create_token("erin")
        key = app.guard.create_api_key("erin", "ci")
    for check in (
        lambda: client.get("/me", headers=basic("erin", PASSWORD)),
        lambda: client.get("/me", headers=bearer(token)),
        lambda: client.get("/me", headers={"X-API-Key": key}),
        lambda: session_client.get("/me"),
    ):
        assert check().status_code == 200
    with app.app_context():
        app.guard.set_active("erin", False)
    assert client.get("/me", headers=basic("erin", PASSWORD)).status_code == 401
    assert client.get("/me", headers=bearer(token)).status_code == 401
    assert client.get("/me", headers={"X-API-Key": key}).status_code == 401
    assert session_client.get("/me").status_code == 401
    with app.app_context():
        app.guard.set_active("erin", True)
    assert client.get("/me", headers=basic("erin", PASSWORD)).status_code == 200
    assert client.get("/me", headers={"X-API-Key": key}).status_code == 200  # keys resume
    assert client.get("/me", headers=bearer(token)).status_code == 401  # tokens stay revoked


def test_password_change_revokes_earlier_tokens(app: Flask) -> None:
    client = app.test_client()
    with app.app_context():
        old = app.guard.create_token("erin")
        app.guard.set_password("erin", "another long password")
        new = app.guard.create_token("erin")
    assert client.get("/me", headers=bearer(old)).status_code == 401
    assert client.get("/me", headers=bearer(new)).status_code == 200
    assert client.get("/me", headers=basic("erin", PASSWORD)).status_code == 401
    assert client.get("/me", headers=basic("erin", "another long password")).status_code == 200


def test_api_keys(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    with app.app_context():
        key = app.guard.create_api_key("erin", "deploy")
        (record,) = app.guard.users.list_api_keys("erin")
    assert key.startswith(f"gk_{record.key_id}_")
    assert key not in (tmp_path / "users.db").read_bytes().decode("latin-1")  # only its hash
    assert client.get("/me", headers={"X-API-Key": key}).json == {"user": "erin"}
    assert client.get("/me", headers={"X-API-Key": key[:-1] + "x"}).status_code == 401
    with app.app_context():
        assert app.guard.users.revoke_api_key(record.key_id)
    assert client.get("/me", headers={"X-API-Key": key}).status_code == 401


def test_an_unreadable_user_store_is_a_503(app: Flask) -> None:
    client = app.test_client()
    with app.app_context():
        key = app.guard.create_api_key("erin")
        with app.guard.users.engine.begin() as connection:  # as good as the database gone
            connection.exec_driver_sql("DROP TABLE guard_api_keys")
    response = client.get("/me", headers={"X-API-Key": key})
    assert response.status_code == 503
    assert b"guard_api_keys" not in response.data and key.encode() not in response.data


def test_bad_api_keys_are_rate_limited(guard_config: dict[str, Any], tmp_path: Path) -> None:
    app = make_app(guard_config, tmp_path, GUARD_AUTH_IP_RATE_LIMIT="3 per minute")
    client = app.test_client()
    with app.app_context():
        key = app.guard.create_api_key("erin")
    for _ in range(3):
        assert client.get("/me", headers={"X-API-Key": "gk_nope_nope"}).status_code == 401
    assert client.get("/me", headers={"X-API-Key": key}).status_code == 429


def test_legacy_hashes_in_the_store_are_upgraded(app: Flask) -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    with app.app_context():
        app.guard.users.create("gina", legacy)
        app.guard.policies.add_role("gina", "employee")
        token = app.guard.create_token("gina")
    client = app.test_client()
    assert client.get("/me", headers=basic("gina", PASSWORD)).status_code == 200
    with app.app_context():
        assert app.guard.users.password_hash("gina").startswith("$argon2id$")  # type: ignore[union-attr]
    assert client.get("/me", headers=bearer(token)).status_code == 200  # an upgrade revokes nothing


def test_registration_is_off_by_default(app: Flask) -> None:
    body = {"login": "hank", "password": PASSWORD}
    assert app.test_client().post("/auth/register", json=body).status_code == 404


def test_registration_enabled(guard_config: dict[str, Any], tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(
        guard_config,
        GUARD_GET_USER_PASS=None,
        GUARD_POLICY=f"sqlite:///{tmp_path / 'reg.db'}",
        GUARD_REGISTRATION=True,
        GUARD_DEFAULT_ROLES=["employee"],
    )
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")
    app.get("/me", authorize="employee", endpoint="me")(lambda: "ok")
    client: FlaskClient = app.test_client()
    body = {"login": "ivy", "password": PASSWORD}
    first, again = (
        client.post("/auth/register", json=body),
        client.post("/auth/register", json=body),
    )
    assert first.status_code == again.status_code == 202
    assert first.get_data() == again.get_data()  # nothing tells whether the login existed
    assert client.get("/me", headers=basic("ivy", PASSWORD)).status_code == 200
    weak = client.post("/auth/register", json={"login": "jo", "password": "weak"})
    assert weak.status_code == 400 and weak.json["details"][0]["param"] == "password"


def test_cli_users_and_keys(app: Flask) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["guard", "user", "create", "kim", "--role", "auditor", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert created.output == "created kim\n"
    assert PASSWORD not in created.output
    listed = runner.invoke(args=["guard", "user", "list"]).output
    assert "kim  active" in listed and "$argon2" not in listed
    assert runner.invoke(args=["guard", "role", "list", "kim"]).output == "employee\nauditor\n"
    assert runner.invoke(args=["guard", "user", "disable", "kim"]).output == "disabled kim\n"
    assert "kim  disabled" in runner.invoke(args=["guard", "user", "list"]).output
    passwd = runner.invoke(
        args=["guard", "user", "passwd", "kim", "--password-stdin"], input="tiny\n"
    )
    assert passwd.exit_code == 1 and "at least 12" in passwd.output
    key = runner.invoke(args=["guard", "apikey", "create", "kim", "--name", "ci"]).output.strip()
    assert key.startswith("gk_")
    keys = runner.invoke(args=["guard", "apikey", "list", "kim"]).output
    assert key not in keys and "ci" in keys
    key_id = keys.split()[0]  # ids are url-safe base64: they may hold "_" themselves
    assert key.startswith(f"gk_{key_id}_")
    assert runner.invoke(args=["guard", "apikey", "revoke", key_id]).output == f"revoked {key_id}\n"
    assert (
        runner.invoke(
            args=["guard", "user", "create", "x", "--password-stdin"], input="short\n"
        ).exit_code
        == 1
    )
