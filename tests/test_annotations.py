"""Views written as apps write them: ``-> Response`` imported for type checkers only, classes
local to an app factory, ``from __future__ import annotations`` (this module)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import flask
import pytest

from flask_casbin_guard import CasbinGuard, ConfigurationError, Flask

if TYPE_CHECKING:
    # For type checkers only: unknown at run time.
    from decimal import Context as TypingOnly

    from flask import Response

FAKE = {"X-Fake-User": "alice"}


@pytest.fixture
def config(guard_config: dict[str, Any]) -> dict[str, Any]:
    return {**guard_config, "GUARD_AUTH": ["fake"]}


def create_extension_app(config: dict[str, Any]) -> flask.Flask:
    """An app factory: a local dataclass, views returning ``Response``, a default declaration."""
    app = flask.Flask(__name__)
    app.config.update(config, GUARD_DEFAULT_AUTHORIZE="AUTH")
    guard = CasbinGuard(app)

    @dataclasses.dataclass
    class Line:
        product: str
        quantity: int

    @app.post("/order")
    @guard.authorize("employee")
    def order(lines: list[Line], rush: bool = False) -> Response:
        return flask.jsonify(units=sum(line.quantity for line in lines), rush=rush)

    @app.get("/ping")  # no declaration: GUARD_DEFAULT_AUTHORIZE
    def ping(n: int = 1) -> Response:
        return flask.jsonify(n=n)

    return app


def create_seed_app(config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(config)

    @dataclasses.dataclass
    class Line:
        product: str
        quantity: int

    @app.post("/order", authorize="employee")
    def order(lines: list[Line]) -> Response:
        return flask.jsonify(units=sum(line.quantity for line in lines))

    return app


def test_extension_app_factory_with_local_class_and_response_return(
    config: dict[str, Any],
) -> None:
    client = create_extension_app(config).test_client()
    body = {"lines": [{"product": "tea", "quantity": 2}]}
    assert client.post("/order", json=body, headers=FAKE).json == {"units": 2, "rush": False}
    assert client.post(
        "/order", json={"lines": [{"product": "tea"}]}, headers=FAKE
    ).status_code == (400)
    assert client.post("/order", json=body).status_code == 401
    assert client.get("/ping?n=3", headers=FAKE).json == {"n": 3}
    assert client.get("/ping").status_code == 401


def test_seed_app_factory_with_local_class_and_response_return(config: dict[str, Any]) -> None:
    client = create_seed_app(config).test_client()
    body = {"lines": [{"product": "tea", "quantity": 2}]}
    assert client.post("/order", json=body, headers=FAKE).json == {"units": 2}
    assert client.post("/order", json=body, headers={"X-Fake-User": "dave"}).status_code == 403


def test_unresolvable_parameter_type_fails_at_registration_naming_view_and_annotation(
    config: dict[str, Any],
) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError) as caught:

        @app.get("/items", authorize="AUTH")
        def items(item: TypingOnly) -> Response:
            return flask.jsonify()

    message = str(caught.value)
    assert "'items'" in message and "'item'" in message and "TypingOnly" in message


def test_unresolvable_type_under_default_declaration_stops_the_app_before_any_view(
    config: dict[str, Any],
) -> None:
    """Extension style, no declaration: found by guard.validate(), never a 500 for one route."""
    app = flask.Flask(__name__)
    app.config.update(config, GUARD_DEFAULT_AUTHORIZE="AUTH")
    guard = CasbinGuard(app)

    @app.get("/items")
    def items(item: TypingOnly) -> Response:
        return flask.jsonify()

    with pytest.raises(ConfigurationError) as caught:
        guard.validate(app)
    message = str(caught.value)
    assert "'items'" in message and "'item'" in message and "TypingOnly" in message
