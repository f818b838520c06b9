"""Extension mode: ``CasbinGuard(app)`` / ``init_app`` on a plain Flask app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.wrappers import Request

from conftest import POLICIES
from flask_casbin_guard import (
    Blueprint,
    CasbinGuard,
    ConfigurationError,
    GuardError,
    Identity,
    PolicyError,
    current_user,
)
from flask_casbin_guard.errors import AuthenticationFailed
from helpers import basic, bearer


def plain_app(config: dict[str, Any]) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(config)
    return app


def test_init_app_and_constructor_are_equivalent(guard_config: dict[str, Any]) -> None:
    for make in (lambda a: CasbinGuard(a), lambda a: CasbinGuard().init_app(a)):
        app = plain_app(guard_config)
        make(app)
        assert isinstance(app.extensions["casbin_guard"], CasbinGuard)


def test_decorated_routes_are_guarded(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    guard = CasbinGuard(app)

    @app.get("/store")
    @guard.authorize("employee")
    def get_store(pattern: str = "%") -> dict[str, str]:
        return {"pattern": pattern, "user": guard.current_user or ""}

    client = app.test_client()
    assert client.get("/store").status_code == 401
    response = client.get("/store?pattern=a%25", headers=basic("alice", "alice-password"))
    assert response.json == {"pattern": "a%", "user": "alice"}
    assert client.get("/store", headers=basic("dave", "dave-password")).status_code == 403


def test_undeclared_endpoints_answer_403_and_never_run(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    CasbinGuard(app)
    calls: list[str] = []

    @app.route("/raw", methods=["GET", "POST"])
    def raw() -> str:
        calls.append("raw")
        return "raw"

    app.add_url_rule("/added", "added", lambda: calls.append("added") or "added")
    client = app.test_client()
    for path in ("/raw", "/added"):
        assert client.get(path, headers=basic("alice", "alice-password")).status_code == 403
    assert client.options("/raw").status_code == 403
    assert client.post("/raw").status_code == 403
    assert calls == []


def test_wrong_decorator_order_fails_closed(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    guard = CasbinGuard(app)

    @guard.authorize("OPEN")  # above @app.get: Flask registered the bare view
    @app.get("/oops")
    def oops() -> str:
        return "never"

    assert app.test_client().get("/oops").status_code == 403


def test_default_declaration_in_extension_mode(guard_config: dict[str, Any]) -> None:
    app = plain_app({**guard_config, "GUARD_DEFAULT_AUTHORIZE": "employee"})
    CasbinGuard(app)
    calls: list[int] = []

    @app.route("/counted/<n>", methods=["GET", "POST"])
    def counted(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    client = app.test_client()
    assert client.get("/counted/3").status_code == 401
    assert client.get("/counted/3", headers=basic("dave", "dave-password")).status_code == 403
    assert client.get("/counted/x", headers=basic("bob", "bob-password")).status_code == 400
    assert client.get("/counted/03", headers=basic("bob", "bob-password")).json == {"n": 3}
    options = client.options("/counted/3")
    assert options.status_code == 200
    assert "GET" in options.headers["Allow"]
    assert calls == [3]


def test_static_endpoint_follows_open_static(guard_config: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("static")
    for open_static, status in ((True, 200), (False, 403)):
        app = flask.Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
        app.config.update(guard_config, GUARD_OPEN_STATIC=open_static)
        CasbinGuard(app)
        response = app.test_client().get("/static/a.txt")
        assert response.status_code == status
        response.close()


def test_configuration_errors_surface_at_init_app(guard_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_AUHT"):
        CasbinGuard(plain_app({**guard_config, "GUARD_AUHT": ["basic"]}))
    with pytest.raises(PolicyError, match="no policy file"):
        CasbinGuard(plain_app({**guard_config, "GUARD_POLICY": "/nonexistent/policy.csv"}))
    with pytest.raises(ConfigurationError, match="'session' scheme needs SECRET_KEY"):
        CasbinGuard(plain_app({**guard_config, "GUARD_AUTH": ["session"]}))
    with pytest.raises(ConfigurationError, match="'apikey' scheme needs the built-in user store"):
        CasbinGuard(plain_app({**guard_config, "GUARD_AUTH": ["apikey"]}))
    with pytest.raises(ConfigurationError, match="unknown authentication scheme 'kerberos'"):
        CasbinGuard(plain_app({**guard_config, "GUARD_AUTH": ["kerberos"]}))
    with pytest.raises(ConfigurationError, match="GUARD_JWT_SECRET"):
        CasbinGuard(plain_app({**guard_config, "GUARD_JWT_SECRET": None}))


def test_bad_policy_row_names_file_and_line(guard_config: dict[str, Any], write_file: Any) -> None:
    path = write_file("bad.csv", "g, alice, employee\n\np, alice, data\n")
    with pytest.raises(PolicyError, match=r"bad\.csv, line 3: 'p' rows take 3 values"):
        CasbinGuard(plain_app({**guard_config, "GUARD_POLICY": path}))


def test_basic_without_password_getter_fails_on_first_request(
    guard_config: dict[str, Any],
) -> None:
    app = plain_app({**guard_config, "GUARD_GET_USER_PASS": None})
    guard = CasbinGuard(app)
    app.get("/x")(guard.authorize("AUTH")(lambda: "x"))
    with pytest.raises(ConfigurationError, match="password getter"):
        app.test_client().get("/x")


def test_password_getter_decorator_after_init(
    guard_config: dict[str, Any], password_hashes: dict[str, str]
) -> None:
    app = plain_app({**guard_config, "GUARD_GET_USER_PASS": None})
    guard = CasbinGuard(app)
    seen: list[str] = []

    @guard.password_getter
    def get_pass(login: str) -> str | None:
        seen.append(login)
        return password_hashes.get(login)

    app.get("/x")(guard.authorize("AUTH")(lambda: "x"))
    client = app.test_client()
    assert client.get("/x", headers=basic("carol", "carol-password")).status_code == 200
    assert seen == ["carol"]


def test_one_guard_serves_two_apps(guard_config: dict[str, Any], write_file: Any) -> None:
    guard = CasbinGuard()
    first, second = plain_app(guard_config), plain_app(guard_config)
    second.config["GUARD_POLICY"] = write_file("empty.csv", "# nobody\n")
    for app in (first, second):
        guard.init_app(app)
        app.get("/s")(guard.authorize("employee")(lambda: "s"))
    auth = basic("alice", "alice-password")
    assert first.test_client().get("/s", headers=auth).status_code == 200
    assert second.test_client().get("/s", headers=auth).status_code == 403
    with first.app_context():
        assert guard.has_role("alice", "employee")
    with second.app_context():
        assert not guard.has_role("alice", "employee")
    with pytest.raises(GuardError, match="no single app"):
        guard.enforce("alice", "store:1", "manager")


def test_attaching_twice_is_an_error(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    CasbinGuard(app)
    with pytest.raises(ConfigurationError, match="already has a CasbinGuard"):
        CasbinGuard(app)


def test_guard_blueprint_on_plain_app(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    CasbinGuard(app)
    bp = Blueprint("bp", __name__)

    @bp.post("/store/<sid>", authorize=("store", "sid", "manager"))
    def manage(sid: int, quantity: int) -> dict[str, int]:
        return {"sid": sid, "quantity": quantity}

    app.register_blueprint(bp, url_prefix="/bp")
    client = app.test_client()
    auth = basic("carol", "carol-password")
    assert client.post("/bp/store/1", json={"quantity": 2}, headers=auth).json == {
        "sid": 1,
        "quantity": 2,
    }
    assert client.post("/bp/store/7", json={"quantity": 2}, headers=auth).status_code == 403


def test_runtime_api(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    guard = CasbinGuard(app)
    # A sole app: usable outside an app context too (scripts, shells).
    assert guard.enforce("carol", "store:1", "manager")
    assert not guard.enforce("bob", "store:1", "manager")
    assert guard.explain("carol", "store:1", "manager") == (
        True,
        ("manager", "store:1", "manager"),
    )
    assert guard.explain("bob", "store:1", "manager") == (False, ())
    assert guard.has_role("carol", "employee")
    stored = guard.hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert guard.verify_password("correct horse", stored)
    assert not guard.verify_password("wrong horse", stored)
    token = guard.create_token("alice", custom="yes")
    app.get("/who")(guard.authorize("AUTH")(lambda: {"user": str(current_user)}))
    assert app.test_client().get("/who", headers=bearer(token)).json == {"user": "alice"}


def test_reload_policy_swaps_or_keeps_the_old(guard_config: dict[str, Any], tmp_path: Path) -> None:
    policy = tmp_path / "policy.csv"
    policy.write_text("g, alice, employee\n")
    app = plain_app({**guard_config, "GUARD_POLICY": str(policy)})
    guard = CasbinGuard(app)
    assert guard.has_role("alice", "employee") and not guard.has_role("bob", "employee")
    policy.write_text("g, bob, employee\n")
    guard.reload_policy()
    assert guard.has_role("bob", "employee") and not guard.has_role("alice", "employee")
    policy.write_text("g, bob, employee\ng, bob\n")
    with pytest.raises(PolicyError, match="line 2"):
        guard.reload_policy()
    assert guard.has_role("bob", "employee")  # the last good policy stays in force


class HeaderScheme:
    """A custom scheme: trusts X-Test-User (for this test only)."""

    name = "header"

    def authenticate(self, request: Request) -> Identity | None:
        login = request.headers.get("X-Test-User")
        if login is None:
            return None
        if login == "mallory":
            raise AuthenticationFailed("header: banned")
        return Identity(login, self.name)

    def challenge(self) -> str | None:
        return None


def test_custom_scheme(guard_config: dict[str, Any]) -> None:
    app = plain_app({**guard_config, "GUARD_AUTH": ["header", "basic"]})
    guard = CasbinGuard()
    guard.register_scheme("header", HeaderScheme())
    guard.init_app(app)
    app.get("/s")(guard.authorize("employee")(lambda: {"user": str(current_user)}))
    client = app.test_client()
    assert client.get("/s", headers={"X-Test-User": "bob"}).json == {"user": "bob"}
    assert client.get("/s", headers={"X-Test-User": "mallory"}).status_code == 401
    # Only basic advertises a challenge.
    challenges = client.get("/s").headers.getlist("WWW-Authenticate")
    assert challenges == ['Basic realm="test_extension", charset="UTF-8"']
    with pytest.raises(ConfigurationError, match="Scheme protocol"):
        guard.register_scheme("bad", object())  # type: ignore[arg-type]


def test_object_loader_feeds_abac_models(guard_config: dict[str, Any], write_file: Any) -> None:
    model = (
        (POLICIES / "rbac_model.conf")
        .read_text()
        .replace(
            "m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act",
            "m = r.sub == r.obj.owner && r.act == p.act",
        )
    )
    app = plain_app(
        {
            **guard_config,
            "GUARD_MODEL": model,
            "GUARD_POLICY": write_file("abac.csv", "p, any, any, edit\n"),
        }
    )
    guard = CasbinGuard(app)
    docs = {1: {"owner": "alice"}, 2: {"owner": "bob"}}

    @guard.object_loader("doc")
    def load_doc(did: int) -> dict[str, str] | None:
        return docs.get(did)

    app.post("/doc/<int:did>")(guard.authorize(("doc", "did", "edit"))(lambda did: {"did": did}))
    client = app.test_client()
    auth = basic("alice", "alice-password")
    assert client.post("/doc/1", headers=auth).json == {"did": 1}
    # Denied on a loaded object: the answer of a missing one (no existence oracle).
    denied = client.post("/doc/2", headers=auth)
    missing = client.post("/doc/3", headers=auth)
    assert denied.status_code == missing.status_code == 404
    assert denied.json == missing.json
    assert missing.json == {"error": "not_found", "message": "object not found", "status": 404}


def test_renderer_override(guard_config: dict[str, Any]) -> None:
    app = plain_app(guard_config)
    guard = CasbinGuard(app)

    @guard.renderer("json")
    def plain_text(error: Any) -> flask.Response:
        return flask.Response(f"nope {error.status}", status=error.status)

    app.get("/x")(guard.authorize("AUTH")(lambda: "x"))
    response = app.test_client().get("/x")
    assert response.get_data(as_text=True) == "nope 401"
    # The security headers are added whatever the renderer does.
    assert response.headers.getlist("WWW-Authenticate")
    assert response.headers["Cache-Control"] == "no-store"
    with pytest.raises(ConfigurationError):
        guard.renderer("xml")


def test_async_object_loader_is_awaited(guard_config: dict[str, Any], write_file: Any) -> None:
    """An ``async def`` loader (an async database driver) decides like a sync one; None is 404."""
    model = (
        (POLICIES / "rbac_model.conf")
        .read_text()
        .replace(
            "m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act",
            "m = r.sub == r.obj.owner && r.act == p.act",
        )
    )
    app = plain_app(
        {
            **guard_config,
            "GUARD_MODEL": model,
            "GUARD_POLICY": write_file("abac.csv", "p, any, any, edit\n"),
        }
    )
    guard = CasbinGuard(app)
    docs = {1: {"owner": "alice"}, 2: {"owner": "bob"}}

    @guard.object_loader("doc")
    async def load_doc(did: int) -> dict[str, str] | None:
        return docs.get(did)

    @app.post("/doc/<int:did>")
    @guard.authorize(("doc", "did", "edit"))
    def edit_doc(did: int) -> dict[str, int]:
        return {"did": did}

    client = app.test_client()
    auth = basic("alice", "alice-password")
    assert client.post("/doc/1", headers=auth).json == {"did": 1}
    # bob's document is denied as a missing one is answered: no existence oracle (issue 23.3)
    denied, missing = client.post("/doc/2", headers=auth), client.post("/doc/3", headers=auth)
    assert (denied.status_code, denied.json) == (missing.status_code, missing.json)
    assert missing.status_code == 404
