"""The policy administration HTTP API (flask_casbin_guard.admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient

from flask_casbin_guard import CasbinGuard, ConfigurationError, Flask
from flask_casbin_guard.admin import admin_blueprint
from helpers import basic

ADMIN = basic("carol", "carol-password")  # carol is a manager: the admin role in these tests
STAFF = basic("alice", "alice-password")


@pytest.fixture
def client(guard_config: dict[str, Any], tmp_path: Path) -> FlaskClient:
    policy = tmp_path / "policy.csv"
    policy.write_text("g, alice, employee\ng, carol, manager\n")
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=str(policy))
    app.register_blueprint(admin_blueprint(authorize="manager"), url_prefix="/guard")
    return app.test_client()


def test_admin_api_is_protected(client: FlaskClient) -> None:
    assert client.get("/guard/policies").status_code == 401
    assert client.get("/guard/policies", headers=STAFF).status_code == 403
    with pytest.raises(ConfigurationError):
        admin_blueprint(authorize="OPEN")


def test_policies_round_trip(client: FlaskClient) -> None:
    rule = {"ptype": "p", "values": ["employee", "store:1", "read"]}
    assert client.post("/guard/policies", json=rule, headers=ADMIN).status_code == 201
    again = client.post("/guard/policies", json=rule, headers=ADMIN)
    assert (again.status_code, again.json) == (200, {"added": False})
    listed = client.get("/guard/policies?ptype=p", headers=ADMIN).json
    assert listed == {"rules": [["p", "employee", "store:1", "read"]]}
    check = client.post(
        "/guard/check", json={"sub": "alice", "obj": "store:1", "act": "read"}, headers=ADMIN
    )
    assert check.json == {"allowed": True, "rule": ["employee", "store:1", "read"]}
    assert client.delete("/guard/policies", json=rule, headers=ADMIN).json == {"removed": True}
    assert client.delete("/guard/policies", json=rule, headers=ADMIN).json == {"removed": False}


def test_roles(client: FlaskClient) -> None:
    body = {"user": "bob", "role": "employee"}
    assert client.post("/guard/roles", json=body, headers=ADMIN).json == {"added": True}
    assert client.get("/guard/roles/bob", headers=ADMIN).json == {
        "user": "bob",
        "roles": ["employee"],
    }
    assert client.delete("/guard/roles", json=body, headers=ADMIN).json == {"removed": True}
    assert client.get("/guard/roles/bob", headers=ADMIN).json["roles"] == []


def test_invalid_input_is_400(client: FlaskClient) -> None:
    short = client.post("/guard/policies", json={"ptype": "p", "values": ["a"]}, headers=ADMIN)
    assert short.status_code == 400
    assert "rows take 3 values" in short.json["details"][0]["expected"]
    cycle = client.post("/guard/roles", json={"user": "manager", "role": "carol"}, headers=ADMIN)
    assert cycle.status_code == 400
    assert client.post("/guard/policies", json={"ptype": "p"}, headers=ADMIN).status_code == 400
    extra = client.post(
        "/guard/policies", json={"ptype": "p", "values": ["a", "b", "c"], "x": 1}, headers=ADMIN
    )
    assert extra.status_code == 400  # strict: unknown keys are refused
    domain = client.post(
        "/guard/check", json={"sub": "a", "obj": "b", "act": "c", "domain": "d"}, headers=ADMIN
    )
    assert domain.status_code == 400


def test_admin_api_in_extension_mode(guard_config: dict[str, Any], tmp_path: Path) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=f"sqlite:///{tmp_path / 'admin.db'}")
    CasbinGuard(app)
    app.register_blueprint(admin_blueprint(authorize="AUTH"), url_prefix="/admin")
    client = app.test_client()
    assert client.post("/admin/roles", json={"user": "x", "role": "y"}, headers=ADMIN).json == {
        "added": True
    }
    assert client.get("/admin/policies", headers=ADMIN).json == {"rules": [["g", "x", "y"]]}


@pytest.mark.parametrize(
    "values",
    [
        ["alice", "report(2024", "read"],  # an unbalanced bracket
        ['"alice', 'data"', "read"],  # a quote opened in one value and closed in the next
        ["alice", "f(x", "y)"],  # brackets balanced only across values
    ],
)
def test_a_rule_the_reader_would_refuse_never_reaches_the_file(
    client: FlaskClient, values: list[str], tmp_path: Path, guard_config: dict[str, Any]
) -> None:
    policy = tmp_path / "policy.csv"
    before = policy.read_bytes()
    answer = client.post("/guard/policies", json={"ptype": "p", "values": values}, headers=ADMIN)
    assert answer.status_code == 400
    assert policy.read_bytes() == before  # validated before the file is touched
    assert str(tmp_path) not in answer.get_data(as_text=True)
    restarted = Flask(__name__)  # the app still starts on the file
    restarted.config.update(guard_config, GUARD_POLICY=str(policy))
    restarted.register_blueprint(admin_blueprint(authorize="manager"), url_prefix="/guard")
    listed = restarted.test_client().get("/guard/policies", headers=ADMIN)
    assert listed.status_code == 200 and len(listed.json["rules"]) == 2


def test_error_answers_never_name_server_paths(client: FlaskClient, tmp_path: Path) -> None:
    policy = tmp_path / "policy.csv"
    rule = {"ptype": "p", "values": ["employee", "store:1", "read"]}
    answers = [client.post("/guard/policies", json={"ptype": "p", "values": ["a"]}, headers=ADMIN)]
    policy.write_text("g, alice, employee\ng, broken\n")  # edited by hand, badly
    answers.append(client.post("/guard/policies", json=rule, headers=ADMIN))
    answers.append(client.delete("/guard/policies", json=rule, headers=ADMIN))
    policy.unlink()
    answers.append(client.post("/guard/roles", json={"user": "x", "role": "y"}, headers=ADMIN))
    assert [answer.status_code for answer in answers] == [400, 503, 503, 503]
    for answer in answers:
        body = answer.get_data(as_text=True)
        assert str(tmp_path) not in body and "policy.csv" not in body, body
