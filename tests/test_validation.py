"""A misconfiguration that would fail one route on every request stops the whole app instead."""

from __future__ import annotations

import logging
from typing import Any

import flask
import pytest

from conftest import POLICIES
from flask_casbin_guard import CasbinGuard, ConfigurationError, Flask, PolicyError
from helpers import DOMAIN_MODEL, basic

RBAC = (POLICIES / "rbac_model.conf").read_text()
#: no [role_definition]: role declarations cannot be decided
NO_ROLES = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
"""
ALICE = basic("alice", "alice-password")


@pytest.fixture
def config(guard_config: dict[str, Any]) -> dict[str, Any]:
    """Production-like: errors answer 500 instead of reaching the test."""
    return {**guard_config, "TESTING": False, "PROPAGATE_EXCEPTIONS": False}


def create_app(config: dict[str, Any], **extra: Any) -> tuple[flask.Flask, CasbinGuard]:
    """An app factory: a health check, a role route, an object route."""
    app = flask.Flask(__name__)
    app.config.update(config, **extra)
    guard = CasbinGuard(app)

    @app.get("/health")
    @guard.authorize("OPEN")
    def health() -> str:
        return "ok"

    @app.get("/store")
    @guard.authorize("employee")
    def store() -> str:
        return "store"

    @app.post("/store/<int:sid>")
    @guard.authorize(("store", "sid", "manager"))
    def edit_store(sid: int) -> str:
        return "edited"

    return app, guard


def test_domains_without_tenant_stop_the_whole_app(
    config: dict[str, Any], write_file: Any, caplog: pytest.LogCaptureFixture
) -> None:
    policy = write_file(
        "domains.csv", "g, alice, employee, t1\np, employee, t1, store:1, manager\n"
    )
    app, guard = create_app(config, GUARD_MODEL=DOMAIN_MODEL, GUARD_POLICY=policy)
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        assert client.get("/health").status_code == 500
        assert client.get("/store", headers=ALICE).status_code == 500
    assert "'store': the Casbin model has domains: set GUARD_TENANT" in caplog.text
    with pytest.raises(ConfigurationError) as caught:
        guard.validate(app)
    assert "'store'" in str(caught.value) and "'edit_store'" in str(caught.value)
    fixed, guard = create_app(
        config, GUARD_MODEL=DOMAIN_MODEL, GUARD_POLICY=policy, GUARD_TENANT="header:X-Tenant"
    )
    guard.validate(fixed)
    client = fixed.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/store", headers={**ALICE, "X-Tenant": "t1"}).status_code == 200


def test_validate_lists_every_problem(config: dict[str, Any], write_file: Any) -> None:
    model = NO_ROLES.replace("r.obj == p.obj", "ownerMatch(r.obj, p.obj)")
    app, guard = create_app(
        config, GUARD_MODEL=model, GUARD_POLICY=write_file("p.csv", "p, alice, store:1, manager\n")
    )

    @app.get("/tokens")
    @guard.authorize("AUTH", authn="param")
    def tokens() -> str:
        return "tokens"

    with pytest.raises(ConfigurationError) as caught:
        guard.validate(app)
    message = str(caught.value)
    assert "'store': declares roles ['employee'] but the Casbin model has no 'g' roles" in message
    assert "'tokens': authn= names schemes GUARD_AUTH does not enable: ['param']" in message
    assert "calls ['ownerMatch'], which no one registered" in message
    client = app.test_client()
    assert client.get("/health").status_code == 500  # refuses as a whole
    guard.add_function("ownerMatch", lambda a, b: a == b)
    with pytest.raises(ConfigurationError) as caught:
        guard.validate(app)
    assert "ownerMatch" not in str(caught.value)


def test_a_valid_app_validates_and_serves(config: dict[str, Any]) -> None:
    app, guard = create_app(config)
    guard.validate(app)
    client = app.test_client()
    assert client.get("/health").text == "ok"
    assert client.get("/store", headers=ALICE).text == "store"
    assert client.post("/store/1", headers=basic("carol", "carol-password")).text == "edited"


def test_eval_rule_that_does_not_parse_is_refused_at_load(
    config: dict[str, Any], write_file: Any
) -> None:
    model = RBAC.replace(
        "m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act",
        "m = eval(p.sub) && r.obj == p.obj && r.act == p.act",
    )
    policy = write_file(
        "abac.csv", "p, r.sub == 'alice', store:1, read\np, r.sub ==, store:2, read\n"
    )
    with pytest.raises(PolicyError, match=r"eval\(\) text 'r.sub ==' is not an expression"):
        create_app(config, GUARD_MODEL=model, GUARD_POLICY=policy)
    # the seed style reads its configuration at the first request: every request then fails
    app = Flask(__name__)
    app.config.update(config, GUARD_MODEL=model, GUARD_POLICY=policy)

    @app.get("/health", authorize="OPEN")
    def health() -> str:
        return "ok"

    assert app.test_client().get("/health").status_code == 500


def test_seed_style_checks_at_the_first_request(config: dict[str, Any], write_file: Any) -> None:
    app = Flask(__name__)
    policy = write_file("p.csv", "p, alice, store:1, read\n")
    app.config.update(config, GUARD_MODEL=NO_ROLES, GUARD_POLICY=policy)

    @app.get("/health", authorize="OPEN")
    def health() -> str:
        return "ok"

    @app.get("/store", authorize="employee")
    def store() -> str:
        return "store"

    assert app.test_client().get("/health").status_code == 500
    with pytest.raises(ConfigurationError, match="'store': declares roles"):
        app.guard.validate()
