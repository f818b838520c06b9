"""The policy administration HTTP API (flask_casbin_guard.admin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient

from flask_casbin_guard import CasbinGuard, ConfigurationError, Flask
from flask_casbin_guard.admin import admin_blueprint
from helpers import DOMAIN_MODEL, basic

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


# --- tenant scope (issue 17, item 2) ---------------------------------------------------------

TENANT_POLICY = """\
g, alice, admin, acme
g, bob, admin, globex
g, dave, admin, acme
g, dave, admin, globex
g, carol, member, acme
p, admin, acme, report:1, read
p, admin, globex, report:1, read
"""
ALICE, BOB, DAVE = (basic(u, f"{u}-password") for u in ("alice", "bob", "dave"))


@pytest.fixture(params=["csv", "sqlite"])
def tenant_app(
    request: pytest.FixtureRequest, guard_config: dict[str, Any], tmp_path: Path
) -> Flask:
    seed = tmp_path / "policy.csv"
    seed.write_text(TENANT_POLICY)
    app = Flask(__name__)
    policy = {"GUARD_POLICY": str(seed)}
    if request.param == "sqlite":
        policy = {"GUARD_POLICY": f"sqlite:///{tmp_path / 'p.db'}", "GUARD_POLICY_SEED": str(seed)}
    app.config.update(
        guard_config, GUARD_MODEL=DOMAIN_MODEL, GUARD_TENANT="header:X-Tenant", **policy
    )
    app.register_blueprint(admin_blueprint(authorize="admin"), url_prefix="/guard")
    return app


def as_admin(headers: dict[str, str], tenant: str) -> dict[str, str]:
    return {**headers, "X-Tenant": tenant}


def test_a_tenant_admin_cannot_touch_another_tenant(tenant_app: Flask) -> None:
    client = tenant_app.test_client()
    alice = as_admin(ALICE, "acme")
    with tenant_app.app_context():
        before = tenant_app.guard.policies.list()
    refused = [
        client.post("/guard/roles", json={"user": "alice", "role": "admin", "domain": "globex"}),
        client.delete("/guard/roles", json={"user": "bob", "role": "admin", "domain": "globex"}),
        client.post(
            "/guard/policies", json={"ptype": "p", "values": ["admin", "globex", "x", "y"]}
        ),
        client.delete(
            "/guard/policies",
            json={"ptype": "p", "values": ["admin", "globex", "report:1", "read"]},
        ),
        client.get("/guard/roles/bob?domain=globex"),
        client.post(
            "/guard/check",
            json={"sub": "bob", "obj": "report:1", "act": "read", "domain": "globex"},
        ),
    ]
    assert [answer.status_code for answer in refused] == [401] * 6  # no credentials at all
    sent = [
        client.post(
            "/guard/roles",
            json={"user": "alice", "role": "admin", "domain": "globex"},
            headers=alice,
        ),
        client.delete(
            "/guard/roles", json={"user": "bob", "role": "admin", "domain": "globex"}, headers=alice
        ),
        client.post(
            "/guard/policies",
            json={"ptype": "p", "values": ["admin", "globex", "x", "y"]},
            headers=alice,
        ),
        client.delete(
            "/guard/policies",
            json={"ptype": "p", "values": ["admin", "globex", "report:1", "read"]},
            headers=alice,
        ),
        client.get("/guard/roles/bob?domain=globex", headers=alice),
        client.post(
            "/guard/check",
            json={"sub": "bob", "obj": "report:1", "act": "read", "domain": "globex"},
            headers=alice,
        ),
    ]
    assert [answer.status_code for answer in sent] == [403] * 6
    assert all(answer.json["error"] == "forbidden" for answer in sent)
    with tenant_app.app_context():
        assert tenant_app.guard.policies.list() == before  # nothing written anywhere


def test_a_tenant_admin_works_in_its_own_tenant_and_sees_only_it(tenant_app: Flask) -> None:
    client = tenant_app.test_client()
    alice = as_admin(ALICE, "acme")
    grant = {"user": "erin", "role": "member", "domain": "acme"}
    assert client.post("/guard/roles", json=grant, headers=alice).status_code == 201
    assert client.get("/guard/roles/erin?domain=acme", headers=alice).json["roles"] == ["member"]
    assert client.delete("/guard/roles", json=grant, headers=alice).json == {"removed": True}
    listed = client.get("/guard/policies", headers=alice).json["rules"]
    assert listed and all("acme" in rule and "globex" not in rule for rule in listed)
    assert ["g", "bob", "admin", "globex"] not in listed
    # The same admin declaration in the other tenant's header does not help: alice is no admin
    # there, so the route itself refuses.
    assert client.get("/guard/policies", headers=as_admin(ALICE, "globex")).status_code == 403


def test_an_admin_of_several_tenants_administers_each(tenant_app: Flask) -> None:
    client = tenant_app.test_client()
    dave = as_admin(DAVE, "acme")
    grant = {"user": "erin", "role": "member", "domain": "globex"}
    assert client.post("/guard/roles", json=grant, headers=dave).status_code == 201
    listed = client.get("/guard/policies", headers=dave).json["rules"]
    assert {rule[-1] if rule[0] == "g" else rule[2] for rule in listed} == {"acme", "globex"}
    bob = as_admin(BOB, "globex")
    assert client.get("/guard/roles/erin?domain=globex", headers=bob).json["roles"] == ["member"]
    assert client.get("/guard/roles/erin?domain=acme", headers=bob).status_code == 403


def test_a_route_declaration_is_checked_in_the_row_domain_too(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.csv"
    policy.write_text(
        "g, alice, admin, acme\ng, bob, admin, globex\n"
        "p, admin, acme, /guard/roles, POST\np, admin, globex, /guard/roles, POST\n"
    )
    app = Flask(__name__)
    app.config.update(
        guard_config,
        GUARD_MODEL=DOMAIN_MODEL,
        GUARD_POLICY=str(policy),
        GUARD_TENANT="header:X-Tenant",
    )
    app.register_blueprint(admin_blueprint(authorize="ROUTE"), url_prefix="/guard")
    client = app.test_client()
    alice = as_admin(ALICE, "acme")
    own = {"user": "erin", "role": "member", "domain": "acme"}
    other = {"user": "alice", "role": "admin", "domain": "globex"}
    assert client.post("/guard/roles", json=own, headers=alice).status_code == 201
    assert client.post("/guard/roles", json=other, headers=alice).status_code == 403
    assert client.get("/guard/policies", headers=alice).status_code == 403  # no GET rule


def _prefixed_tenant_app(
    guard_config: dict[str, Any], tmp_path: Path, policy: str, model: str, authorize: str
) -> FlaskClient:
    path = tmp_path / "policy.csv"
    path.write_text(policy)
    app = Flask(__name__)
    app.config.update(
        guard_config,
        GUARD_MODEL=model,
        GUARD_POLICY=str(path),
        GUARD_TENANT="header:X-Tenant",
        GUARD_USER_PREFIX="user:",
    )
    app.register_blueprint(admin_blueprint(authorize=authorize), url_prefix="/guard")
    return app.test_client()


def test_the_tenant_scope_is_decided_for_the_prefixed_subject(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    # The login dave administers acme; a role that happens to be called "dave" administers
    # globex. The scope must be dave's subject's ("user:dave"), as the route check is.
    client = _prefixed_tenant_app(
        guard_config,
        tmp_path,
        "g, user:dave, admin, acme\ng, dave, admin, globex\ng, user:bob, dave, globex\n"
        "g, user:alice, admin, acme\n",
        DOMAIN_MODEL,
        "admin",
    )
    dave = as_admin(DAVE, "acme")
    cross = {"user": "user:dave", "role": "admin", "domain": "globex"}
    assert client.post("/guard/roles", json=cross, headers=dave).status_code == 403
    listed = client.get("/guard/policies", headers=dave).json["rules"]
    assert {rule[3] for rule in listed} == {"acme"}
    alice = as_admin(ALICE, "acme")
    own = {"user": "user:erin", "role": "member", "domain": "acme"}
    assert client.post("/guard/roles", json=own, headers=alice).status_code == 201
    assert client.get("/guard/roles/user:erin?domain=acme", headers=alice).json["roles"] == [
        "member"
    ]


#: Casbin's own example order: the domain third
DOMAIN_THIRD_MODEL = DOMAIN_MODEL.replace("r = sub, dom, obj, act", "r = sub, obj, dom, act")


def test_route_scope_and_check_put_the_domain_where_the_model_does(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    client = _prefixed_tenant_app(
        guard_config,
        tmp_path,
        "g, user:alice, admin, acme\np, admin, acme, /guard/roles, POST\n"
        "p, admin, acme, /guard/check, POST\np, admin, acme, report:1, read\n",
        DOMAIN_THIRD_MODEL,
        "ROUTE",
    )
    alice = as_admin(ALICE, "acme")
    own = {"user": "user:erin", "role": "member", "domain": "acme"}
    assert client.post("/guard/roles", json=own, headers=alice).status_code == 201
    other = {"user": "user:erin", "role": "member", "domain": "globex"}
    assert client.post("/guard/roles", json=other, headers=alice).status_code == 403
    asked = {"sub": "user:alice", "obj": "report:1", "act": "read", "domain": "acme"}
    answer = client.post("/guard/check", json=asked, headers=alice)
    assert answer.status_code == 200 and answer.json["allowed"] is True, answer.json
