"""``flask guard ...`` commands, run through Flask's CLI runner on a real app."""

from __future__ import annotations

from typing import Any

import flask
import jwt
import pytest

from flask_casbin_guard import CasbinGuard, Flask
from helpers import JWT_SECRET


@pytest.fixture
def app(guard_config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config)
    app.get("/store/<sid>", authorize=("store", "sid", "manager"))(lambda sid: "x")
    app.get("/open", authorize="OPEN", endpoint="open")(lambda: "x")
    return app


def test_routes_lists_declarations(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert result.exit_code == 0
    assert "/store/<sid>" in result.output
    assert "('store', 'sid', 'manager')" in result.output
    assert "auth=bearer,basic" in result.output
    assert "/open  [GET,HEAD,OPTIONS]  open  auth=-  authorize='OPEN'" in result.output
    assert "UNCOVERED" not in result.output


def test_routes_flags_uncovered_endpoints(guard_config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config)
    CasbinGuard(app)
    app.add_url_rule("/forgotten", "forgotten", lambda: "x")
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert "/forgotten" in result.output
    assert "UNCOVERED: answers 403" in result.output
    assert "1 endpoint(s) not covered" in result.output


def test_check_exit_status_and_explain(app: Flask) -> None:
    runner = app.test_cli_runner()
    allowed = runner.invoke(args=["guard", "check", "carol", "store:1", "manager", "--explain"])
    assert allowed.exit_code == 0
    assert allowed.output == "allow\nrule: manager, store:1, manager\n"
    denied = runner.invoke(args=["guard", "check", "bob", "store:1", "manager", "--explain"])
    assert denied.exit_code == 3
    assert denied.output == "deny\nrule: (no rule matched)\n"


def test_policy_list_and_roles(app: Flask) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["guard", "policy", "list", "--ptype", "g"])
    assert listed.output.splitlines()[0] == "g, alice, employee"
    assert all(line.startswith("g, ") for line in listed.output.splitlines())
    roles = runner.invoke(args=["guard", "role", "list", "carol"])
    assert roles.output.split() == ["employee", "manager"]


def test_policy_validate(app: Flask, guard_config: dict[str, Any], write_file: Any) -> None:
    result = app.test_cli_runner().invoke(args=["guard", "policy", "validate"])
    assert result.exit_code == 0
    assert result.output.startswith("ok: 10 rule(s), request (sub, obj, act)")
    app.config["GUARD_POLICY"] = write_file("bad.csv", "p, a, b, c\np, a, , c\n")
    broken = Flask(__name__)
    broken.config.update(guard_config, GUARD_POLICY=app.config["GUARD_POLICY"])
    failed = broken.test_cli_runner().invoke(args=["guard", "policy", "validate"])
    assert failed.exit_code == 1
    assert "bad.csv, line 2: value 2 is empty" in failed.output


def test_token_is_a_valid_jwt(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["guard", "token", "alice", "--expires", "30m"])
    assert result.exit_code == 0
    claims = jwt.decode(result.output.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 1800
    bad = app.test_cli_runner().invoke(args=["guard", "token", "alice", "--expires", "soon"])
    assert bad.exit_code == 2


def test_hash_password_from_stdin(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["guard", "hash-password", "--password-stdin"], input="hunter2-hunter2\n"
    )
    stored = result.output.strip()
    assert stored.startswith("$argon2id$")
    assert app.guard.verify_password("hunter2-hunter2", stored)
    assert "hunter2" not in result.output
