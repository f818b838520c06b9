"""Users and roles as Casbin subjects: HTTP decisions are pycasbin's, whatever the names.

Casbin lets a policy use a user as a role (``g, erin, dave``: erin inherits dave's rights); the
request pipeline must then decide for dave exactly as ``guard.enforce`` and pycasbin do, on role,
object and ``ROUTE`` routes. Logins that squat a role name are refused where accounts are made;
for identities the guard does not create, ``GUARD_USER_PREFIX`` keeps users and roles apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import casbin
import pytest
from flask import Flask

from conftest import POLICIES
from flask_casbin_guard import CasbinGuard, ConfigurationError
from flask_casbin_guard.authn.passwords import PasswordHasher
from helpers import basic

MODEL = (POLICIES / "rbac_model.conf").read_text()

#: dave is a user with rights of his own, and also a role: erin inherits them
USER_AS_ROLE = """\
p, dave, store:1, manager
p, dave, /report, GET
p, employee, /report, GET
g, dave, employee
g, erin, dave
"""

LOGINS = ("alice", "dave", "erin", "employee", "zoe")


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    hasher = PasswordHasher()
    return {login: hasher.hash(f"{login}-password") for login in LOGINS}


def make_app(tmp_path: Path, hashes: dict[str, str], policy: str, **config: Any) -> Flask:
    (tmp_path / "policy.csv").write_text(policy)
    app = Flask("subjects")
    app.config.update(
        TESTING=True,
        GUARD_AUTH=["basic"],
        GUARD_MODEL=MODEL,
        GUARD_POLICY=str(tmp_path / "policy.csv"),
        GUARD_GET_USER_PASS=hashes.get,  # an external user store: the guard made no account
        **config,
    )
    guard = CasbinGuard(app)

    @app.get("/staff")
    @guard.authorize("employee")
    def staff() -> str:
        return "staff"

    @app.post("/store/<int:sid>")
    @guard.authorize(("store", "sid", "manager"))
    def store(sid: int) -> dict[str, int]:
        return {"sid": sid}

    @app.get("/report")
    @guard.authorize("ROUTE")
    def report() -> str:
        return "report"

    @app.get("/me")
    @guard.authorize("AUTH")
    def me() -> dict[str, Any]:
        return {"user": guard.current_user}

    return app


def pycasbin(policy: str) -> Any:
    model = casbin.Model()
    model.load_model_from_text(MODEL)
    enforcer = casbin.Enforcer(model)
    for line in policy.splitlines():
        ptype, *values = [part.strip() for part in line.split(",")]
        if ptype == "p":
            enforcer.add_policy(*values)
        else:
            enforcer.add_grouping_policy(*values)
    return enforcer


def http_decisions(app: Flask, login: str) -> dict[str, bool]:
    client = app.test_client()
    headers = basic(login, f"{login}-password")
    answers = {
        "role employee": client.get("/staff", headers=headers),
        "store:1 manager": client.post("/store/1", headers=headers),
        "/report GET": client.get("/report", headers=headers),
    }
    assert {r.status_code for r in answers.values()} <= {200, 403}, login
    return {what: response.status_code == 200 for what, response in answers.items()}


def reference_decisions(enforcer: Any, subject: str) -> dict[str, bool]:
    return {
        # a role declaration: the role among pycasbin's implicit roles (never the subject itself)
        "role employee": "employee" in enforcer.get_implicit_roles_for_user(subject),
        "store:1 manager": enforcer.enforce(subject, "store:1", "manager"),
        "/report GET": enforcer.enforce(subject, "/report", "GET"),
    }


def test_a_user_the_policy_also_uses_as_a_role_keeps_his_rights(
    tmp_path: Path, hashes: dict[str, str]
) -> None:
    app = make_app(tmp_path, hashes, USER_AS_ROLE)
    enforcer = pycasbin(USER_AS_ROLE)
    guard = app.extensions["casbin_guard"]
    for login in ("dave", "erin"):  # dave holds employee through his own g row
        assert http_decisions(app, login) == dict.fromkeys(reference_decisions(enforcer, ""), True)
    for login in LOGINS:
        expected = reference_decisions(enforcer, login)
        assert http_decisions(app, login) == expected, login
        with app.app_context():
            assert guard.enforce(login, "store:1", "manager") == expected["store:1 manager"]
            assert guard.enforce(login, "/report", "GET") == expected["/report GET"]
            assert guard.has_role(login, "employee") == expected["role employee"]


ROLE_POLICY = """\
p, employee, /report, GET
p, employee, store:1, manager
g, {alice}, employee
"""


def test_without_a_prefix_a_login_named_like_a_role_gets_its_rules_not_its_declarations(
    tmp_path: Path, hashes: dict[str, str]
) -> None:
    policy = ROLE_POLICY.format(alice="alice")
    app = make_app(tmp_path, hashes, policy)
    enforcer = pycasbin(policy)
    for login in ("alice", "employee", "zoe"):
        assert http_decisions(app, login) == reference_decisions(enforcer, login), login
    # Casbin's matcher holds g(x, x): the role's p rules apply to the login "employee". A role
    # declaration does not: an identity provider's "employee" is not the employee role.
    assert http_decisions(app, "employee") == {
        "role employee": False,
        "store:1 manager": True,
        "/report GET": True,
    }


def test_a_user_prefix_keeps_users_and_roles_apart(tmp_path: Path, hashes: dict[str, str]) -> None:
    policy = ROLE_POLICY.format(alice="user:alice")
    app = make_app(tmp_path, hashes, policy, GUARD_USER_PREFIX="user:")
    enforcer = pycasbin(policy)
    guard = app.extensions["casbin_guard"]
    assert guard.subject("alice") == "user:alice"
    assert http_decisions(app, "alice") == dict.fromkeys(http_decisions(app, "alice"), True)
    assert http_decisions(app, "employee") == dict.fromkeys(http_decisions(app, "alice"), False)
    for login in ("alice", "employee", "zoe"):
        expected = reference_decisions(enforcer, guard.subject(login))
        assert http_decisions(app, login) == expected, login
    # The login stays the login: only the Casbin subject carries the prefix.
    me = app.test_client().get("/me", headers=basic("employee", "employee-password"))
    assert me.json == {"user": "employee"}


@pytest.mark.parametrize("prefix", [" user:", "user,", "user:\n", 7, "x" * 65])
def test_unusable_user_prefixes_are_configuration_errors(
    tmp_path: Path, hashes: dict[str, str], prefix: object
) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_USER_PREFIX must"):
        make_app(tmp_path, hashes, ROLE_POLICY, GUARD_USER_PREFIX=prefix)


def test_accounts_the_guard_creates_get_their_roles_under_the_prefix(tmp_path: Path) -> None:
    app = Flask("subjects_store")
    app.config.update(
        TESTING=True,
        GUARD_AUTH=["basic"],
        GUARD_MODEL=MODEL,
        GUARD_POLICY=f"sqlite:///{tmp_path / 'guard.db'}",
        GUARD_USER_PREFIX="user:",
        GUARD_DEFAULT_ROLES=["employee"],
    )
    guard = CasbinGuard(app)
    app.add_url_rule("/staff", "staff", guard.authorize("employee")(lambda: "staff"))
    with app.app_context():
        guard.create_user("alice", "alice-long-password")
        assert ("g", "user:alice", "employee") in guard.policies.list("g")
        assert guard.has_role(guard.subject("alice"), "employee")
    staff = app.test_client().get("/staff", headers=basic("alice", "alice-long-password"))
    assert staff.status_code == 200
