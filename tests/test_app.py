"""The seed style: ``flask_casbin_guard.Flask`` and ``Blueprint`` with ``authorize=``."""

from __future__ import annotations

from typing import Any

import flask
import pytest

from flask_casbin_guard import Blueprint, CasbinGuard, ConfigurationError, Flask
from helpers import basic


def make_app(guard_config: dict[str, Any], **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, **extra)
    return app


def test_guard_is_the_extension_and_config_is_read_lazily(guard_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    assert isinstance(app.extensions["casbin_guard"], CasbinGuard)
    assert app.guard is app.extensions["casbin_guard"]

    @app.get("/hello", authorize="employee")
    def hello() -> str:
        return "hello"

    # Configured after construction and after registration, as any Flask app may be.
    app.config.update(guard_config)
    client = app.test_client()
    assert client.get("/hello", headers=basic("alice", "alice-password")).status_code == 200
    assert client.get("/hello", headers=basic("dave", "dave-password")).status_code == 403


def test_route_without_declaration_is_refused_at_registration(
    guard_config: dict[str, Any],
) -> None:
    app = make_app(guard_config)
    with pytest.raises(ConfigurationError, match="'naked'.*no authorize"):

        @app.get("/naked")
        def naked() -> str:
            return "never"


def test_default_declaration_applies_to_undeclared_routes(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_DEFAULT_AUTHORIZE="AUTH")

    @app.get("/any")
    def anyone() -> str:
        return "ok"

    client = app.test_client()
    assert client.get("/any").status_code == 401
    assert client.get("/any", headers=basic("dave", "dave-password")).status_code == 200


@pytest.mark.parametrize("spec", ["", [], "open", ("store", "sid"), 42])
def test_bad_declarations_fail_at_registration(guard_config: dict[str, Any], spec: Any) -> None:
    app = make_app(guard_config)
    with pytest.raises(ConfigurationError, match="'bad'"):

        @app.get("/bad/<sid>", authorize=spec)
        def bad(sid: int) -> str:
            return "never"


def test_declared_parameter_must_be_bound(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    with pytest.raises(ConfigurationError, match="'orphan'.*'sid'"):

        @app.get("/orphan", authorize=("store", "sid", "read"))
        def orphan() -> str:
            return "never"


def test_path_parameter_must_be_in_signature(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    with pytest.raises(ConfigurationError, match="'lost'.*'sid'"):

        @app.get("/lost/<sid>", authorize="AUTH")
        def lost() -> str:
            return "never"


def test_all_http_method_shortcuts_accept_authorize(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    for method in ("get", "post", "put", "patch", "delete"):
        getattr(app, method)(f"/{method}", authorize="AUTH", endpoint=method)(lambda: "ok")
    app.route("/route", methods=["GET"], authorize="OPEN", endpoint="route")(lambda: "r")
    client = app.test_client()
    auth = basic("alice", "alice-password")
    for method in ("get", "post", "put", "patch", "delete"):
        assert getattr(client, method)(f"/{method}").status_code == 401
        assert getattr(client, method)(f"/{method}", headers=auth).status_code == 200
    assert client.get("/route").status_code == 200


def test_static_files_are_open_by_default(guard_config: dict[str, Any], tmp_path: Any) -> None:
    (tmp_path / "style.css").write_text("body {}")
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
    app.config.update(guard_config)
    response = app.test_client().get("/static/style.css")
    assert response.status_code == 200
    assert response.get_data() == b"body {}"
    response.close()


def test_static_files_closed_when_configured(guard_config: dict[str, Any], tmp_path: Any) -> None:
    (tmp_path / "style.css").write_text("body {}")
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
    app.config.update(guard_config, GUARD_OPEN_STATIC=False)
    assert app.test_client().get("/static/style.css").status_code == 403


def test_guard_blueprint_routes(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    shop = Blueprint("shop", __name__, url_prefix="/shop")

    @shop.get("/<sid>", authorize=("store", "sid", "manager"))
    def manage(sid: int) -> dict[str, int]:
        return {"sid": sid}

    @shop.get("/report", authorize="ROUTE")
    def report() -> str:
        return "report"

    app.register_blueprint(shop)
    client = app.test_client()
    assert client.get("/shop/07", headers=basic("bob", "bob-password")).json == {"sid": 7}
    assert client.get("/shop/1", headers=basic("bob", "bob-password")).status_code == 403
    # ROUTE sees the full rule, prefix included: /shop/report is not in the policy.
    assert client.get("/shop/report", headers=basic("dave", "dave-password")).status_code == 403


def test_plain_flask_blueprint_on_guarded_app(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    plain = flask.Blueprint("plain", __name__)

    @plain.get("/plain", authorize="employee")
    def hello() -> str:
        return "hi"

    app.register_blueprint(plain)
    client = app.test_client()
    assert client.get("/plain", headers=basic("bob", "bob-password")).status_code == 200
    assert client.get("/plain", headers=basic("dave", "dave-password")).status_code == 403


def test_blueprint_prefix_variables_are_checked_against_the_view(
    guard_config: dict[str, Any],
) -> None:
    app = make_app(guard_config)
    org = Blueprint("org", __name__, url_prefix="/org/<oid>")

    @org.get("/info", authorize="AUTH")
    def info() -> str:
        return "never"

    with pytest.raises(ConfigurationError, match="'oid'"):
        app.register_blueprint(org)


def test_unguarded_blueprint_route_is_refused(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    plain = flask.Blueprint("raw", __name__)
    plain.add_url_rule("/raw", "raw", lambda: "never")
    with pytest.raises(ConfigurationError, match="'raw.raw'"):
        app.register_blueprint(plain)


def test_declaring_twice_is_an_error(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    bp = Blueprint("twice", __name__)
    bp.add_url_rule("/t", "t", lambda: "x", authorize="OPEN")
    app.register_blueprint(bp)  # fine: declared once, on the blueprint
    guard = app.guard
    with pytest.raises(ConfigurationError, match="declared twice"):
        app.add_url_rule("/u", "u", guard.authorize("OPEN")(lambda: "x"), authorize="AUTH")


def test_unknown_guard_key_fails_on_first_use(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_POLICIES="typo.csv")

    @app.get("/", authorize="OPEN")
    def index() -> str:
        return "x"

    with pytest.raises(ConfigurationError, match="GUARD_POLICIES.*GUARD_POLICY"):
        app.test_client().get("/")
