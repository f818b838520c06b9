"""Class-based views (``MethodView``, ``View.as_view``) in both attach styles, through HTTP."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import flask
import pytest
from flask.views import MethodView, View

from flask_casbin_guard import Blueprint, CasbinGuard, ConfigurationError, Flask, current_user

if TYPE_CHECKING:
    from flask import Response


def fake(login: str) -> dict[str, str]:
    return {"X-Fake-User": login}


@pytest.fixture
def config(guard_config: dict[str, Any]) -> dict[str, Any]:
    return {**guard_config, "GUARD_AUTH": ["fake"]}


# --- extension style: a module-level guard, declarations on the methods ---------------------

guard = CasbinGuard()
calls: list[str] = []


class StoreAPI(MethodView):
    """Each HTTP method has its own declaration and its own parameters."""

    @guard.authorize("employee")
    def get(self, sid: int, detail: bool = False) -> Response:
        return flask.jsonify(sid=sid, detail=detail, user=str(current_user))

    @guard.authorize(("store", "sid", "manager"))
    def post(self, sid: int, product: str, quantity: int) -> Response:
        return flask.jsonify(sid=sid, product=product, quantity=quantity)

    def delete(self, sid: int) -> Response:  # no declaration: refused, as function views are
        calls.append(f"delete {sid}")
        return flask.jsonify(deleted=sid)


class Reports(MethodView):
    """One declaration for the whole class, the Flask way (``decorators``); GET overrides it."""

    decorators = [guard.authorize("AUTH")]

    @guard.authorize("auditor")
    def get(self) -> Response:
        return flask.jsonify(reports=[])

    def post(self, title: str) -> Response:
        return flask.jsonify(title=title)


def create_app(config: dict[str, Any]) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(config)
    guard.init_app(app)
    app.add_url_rule("/store/<int:sid>", view_func=StoreAPI.as_view("store"))
    app.add_url_rule("/reports", view_func=Reports.as_view("reports"))
    return app


def test_method_view_in_extension_style(config: dict[str, Any]) -> None:
    client = create_app(config).test_client()
    assert client.get("/store/7").status_code == 401
    assert client.get("/store/7", headers=fake("alice")).json == {
        "sid": 7,
        "detail": False,
        "user": "alice",
    }
    assert client.get("/store/7?detail=true", headers=fake("alice")).json["detail"] is True
    assert client.get("/store/7?detail=maybe", headers=fake("alice")).status_code == 400
    assert client.head("/store/7", headers=fake("alice")).status_code == 200
    assert client.get("/store/7", headers=fake("dave")).status_code == 403
    # POST: its own object permission on its own converted parameter, its own parameters
    body = {"product": "tea", "quantity": 3}
    assert client.post("/store/7", json=body, headers=fake("bob")).json == {
        "sid": 7,
        "product": "tea",
        "quantity": 3,
    }
    assert client.post("/store/1", json=body, headers=fake("bob")).status_code == 403
    assert client.post("/store/1", json=body, headers=fake("carol")).status_code == 200
    assert client.post("/store/7", json={"product": "tea"}, headers=fake("bob")).status_code == 400
    # DELETE has no declaration: 403 for everyone, and the method never runs
    assert client.delete("/store/7", headers=fake("carol")).status_code == 403
    assert calls == []


def test_class_wide_declaration_through_decorators(config: dict[str, Any]) -> None:
    client = create_app(config).test_client()
    assert client.post("/reports", json={"title": "q3"}).status_code == 401
    assert client.post("/reports", json={"title": "q3"}, headers=fake("alice")).json == {
        "title": "q3"
    }
    assert client.post("/reports", json={}, headers=fake("alice")).status_code == 400
    assert client.get("/reports", headers=fake("alice")).status_code == 403
    assert client.get("/reports", headers=fake("dave")).json == {"reports": []}


def test_wrapping_the_as_view_function(config: dict[str, Any]) -> None:
    """Flask's other documented way: decorate what ``as_view`` returns."""

    class Ping(MethodView):
        def get(self, n: int = 1) -> Response:
            return flask.jsonify(n=n)

    app = flask.Flask(__name__)
    app.config.update(config)
    local = CasbinGuard(app)
    app.add_url_rule("/ping", view_func=local.authorize("AUTH")(Ping.as_view("ping")))
    client = app.test_client()
    assert client.get("/ping").status_code == 401
    assert client.get("/ping?n=2", headers=fake("dave")).json == {"n": 2}


# --- seed style: authorize= on the route, the guard as app.guard ----------------------------


def create_seed_app(config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(config)

    @dataclasses.dataclass
    class Line:
        product: str
        quantity: int

    class ItemAPI(MethodView):
        def get(self, iid: int) -> Response:
            return flask.jsonify(iid=iid)

        async def put(self, iid: int, line: Line) -> Response:
            return flask.jsonify(iid=iid, units=line.quantity)

        @app.guard.authorize("ROUTE")
        def delete(self, iid: int) -> Response:
            return flask.jsonify(deleted=iid)

    class Hello(View):
        methods = ["GET", "POST"]

        def dispatch_request(self, name: str, times: int = 1) -> Response:
            return flask.jsonify(hello=[name] * times)

    app.add_url_rule("/item/<int:iid>", view_func=ItemAPI.as_view("item"), authorize="employee")
    app.add_url_rule("/hello/<name>", view_func=Hello.as_view("hello"), authorize="AUTH")
    return app


def test_method_view_in_seed_style(config: dict[str, Any]) -> None:
    client = create_seed_app(config).test_client()
    assert client.get("/item/3").status_code == 401
    assert client.get("/item/3", headers=fake("alice")).json == {"iid": 3}
    assert client.get("/item/3", headers=fake("dave")).status_code == 403
    line = {"line": {"product": "tea", "quantity": 2}}
    assert client.put("/item/3", json=line, headers=fake("alice")).json == {"iid": 3, "units": 2}
    assert client.put("/item/3", json={"line": {}}, headers=fake("alice")).status_code == 400
    # DELETE: its own declaration replaces the route's (p, auditor, /item/<int:iid>, DELETE)
    assert client.delete("/item/3", headers=fake("alice")).status_code == 403
    assert client.delete("/item/3", headers=fake("dave")).json == {"deleted": 3}


def test_plain_view_binds_dispatch_request(config: dict[str, Any]) -> None:
    client = create_seed_app(config).test_client()
    assert client.get("/hello/ann").status_code == 401
    assert client.get("/hello/ann?times=2", headers=fake("dave")).json == {"hello": ["ann", "ann"]}
    assert client.post("/hello/ann", json={"times": "x"}, headers=fake("dave")).status_code == 400


def test_undeclared_class_view_is_refused_at_registration(config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(config)

    class Open(MethodView):
        @app.guard.authorize("OPEN")
        def get(self) -> Response:
            return flask.jsonify()

        def post(self) -> Response:
            return flask.jsonify()

    with pytest.raises(ConfigurationError) as caught:
        app.add_url_rule("/open", view_func=Open.as_view("open"))
    assert "'open'" in str(caught.value) and "POST" in str(caught.value)
    app.config["GUARD_DEFAULT_AUTHORIZE"] = "AUTH"
    app.add_url_rule("/open", view_func=Open.as_view("open"))
    client = app.test_client()
    assert client.get("/open").status_code == 200
    assert client.post("/open").status_code == 401


def test_class_view_on_a_guard_blueprint(config: dict[str, Any]) -> None:
    class Stock(MethodView):
        def get(self, sid: int) -> Response:
            return flask.jsonify(sid=sid)

    blueprint = Blueprint("shop", __name__)
    blueprint.add_url_rule("/stock/<int:sid>", view_func=Stock.as_view("stock"), authorize="AUTH")
    for app in (Flask(__name__), flask.Flask(__name__)):
        app.config.update(config)
        if not isinstance(app, Flask):
            CasbinGuard(app)
        app.register_blueprint(blueprint, url_prefix="/shop")
        client = app.test_client()
        assert client.get("/shop/stock/2").status_code == 401
        assert client.get("/shop/stock/2", headers=fake("dave")).json == {"sid": 2}


def test_the_apps_before_request_functions_run_for_allowed_requests(
    config: dict[str, Any],
) -> None:
    """A class view (and a GUARD_DEFAULT_AUTHORIZE view) compiled after registration still
    lets the app's own before_request functions (CSRFProtect...) run before it."""
    app = create_app({**config, "GUARD_DEFAULT_AUTHORIZE": "AUTH"})
    seen: list[str | None] = []

    @app.before_request
    def record() -> None:
        seen.append(flask.request.endpoint)

    @app.get("/plain/<int:n>")
    def plain(n: int) -> Response:
        return flask.jsonify(n=n)

    client = app.test_client()
    assert client.get("/store/7", headers=fake("alice")).json["sid"] == 7
    assert client.get("/plain/3", headers=fake("alice")).json == {"n": 3}
    assert client.get("/store/7", headers=fake("dave")).status_code == 403
    assert seen == ["store", "plain"]


def test_flask_guard_routes_shows_each_methods_declaration(config: dict[str, Any]) -> None:
    result = create_app(config).test_cli_runner().invoke(args=["guard", "routes"])
    line = next(x for x in result.output.splitlines() if x.startswith("/store/<int:sid>"))
    assert "GET: 'employee'; POST: ('store', 'sid', 'manager')" in line
    # StoreAPI.delete has no declaration: it answers 403, so the listing must say so and fail.
    assert "UNCOVERED: DELETE answers 403" in line
    reports = next(x for x in result.output.splitlines() if x.startswith("/reports"))
    assert "UNCOVERED" not in reports  # the class-wide declaration covers POST
    assert result.exit_code == 1


def test_flask_guard_routes_flags_every_undeclared_method(config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(config)
    items_guard = CasbinGuard(app)

    class Items(MethodView):
        @items_guard.authorize("employee")
        def get(self) -> str:
            return "items"

        def post(self) -> str:
            return "created"

        def delete(self) -> str:
            return "deleted"

    app.add_url_rule("/items", view_func=Items.as_view("items"))
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    line = next(x for x in result.output.splitlines() if x.startswith("/items"))
    assert "UNCOVERED: DELETE,POST answer 403" in line, result.output
    assert result.exit_code == 1
    client = app.test_client()
    assert client.post("/items", headers=fake("alice")).status_code == 403  # what it says
    assert client.delete("/items", headers=fake("alice")).status_code == 403
    assert client.get("/items", headers=fake("alice")).status_code == 200
