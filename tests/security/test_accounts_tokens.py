"""Accounts and tokens under attack, over HTTP, on real databases (issue 16, Trust II).

Deleted accounts, logins named like roles, refresh token reuse (sequential and racing threads)
and revocations across restarts. SQLite files and a fresh PostgreSQL database per test; the
PostgreSQL half skips when the server is absent, unless GUARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask.views import MethodView

from conftest import PASSWORDS, POLICIES
from flask_casbin_guard import ConfigurationError, CurrentUser, Flask, LoginUnavailable
from flask_casbin_guard.auth import auth_blueprint
from flask_casbin_guard.errors import PolicyError
from helpers import JWT_SECRET, basic, bearer

SECRET = "a-session-secret-of-more-than-32-characters"
PASSWORD = "a long enough password"
SEED = """\
g, manager, employee
g, carol, manager
p, employee, /store, GET
p, auditor, /report, GET
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'guard.db'}"
    return str(request.getfixturevalue("postgres_url"))


def make_app(tmp_path: Path, policy: str | None, **config: Any) -> Flask:
    """An app with every credential kind; its instance folder is ``tmp_path/instance``, so a
    second call with the same arguments is the same app after a restart."""
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    seed = tmp_path / "seed.csv"
    seed.write_text(SEED)
    app.config.update(
        TESTING=True,
        SECRET_KEY=SECRET,
        GUARD_MODEL=str(POLICIES / "rbac_model.conf"),
        GUARD_JWT_SECRET=JWT_SECRET,
        GUARD_AUTH=["bearer", "session", "basic"],
    )
    if policy is not None:
        app.config["GUARD_POLICY"] = policy
    if policy is not None and "://" in policy:  # API keys need the built-in user store
        app.config.update(
            GUARD_POLICY_SEED=str(seed), GUARD_AUTH=[*app.config["GUARD_AUTH"], "apikey"]
        )
    app.config.update(config)
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")

    @app.get("/me", authorize="AUTH")
    def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    @app.get("/store", authorize="employee")
    def store(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    @app.get("/staff", authorize="staff")
    def staff() -> str:
        return "staff only"

    return app


def tokens(client: FlaskClient, login: str, password: str) -> dict[str, str]:
    response = client.post("/auth/token", json={"login": login, "password": password})
    assert response.status_code == 200, response.json
    return dict(response.json)


def refresh(client: FlaskClient, token: str) -> Any:
    return client.post("/auth/refresh", json={"refresh_token": token})


def rows_naming(engine: sa.Engine, login: str) -> list[tuple[Any, ...]]:
    query = "SELECT ptype, v0, v1 FROM casbin_rule WHERE v0 = :l OR v1 = :l"
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(query), {"l": login})]


# -- 1. gone accounts -------------------------------------------------------------------------


def test_a_deleted_user_loses_every_credential_and_grant(database: str, tmp_path: Path) -> None:
    app = make_app(tmp_path, database, GUARD_DEFAULT_ROLES=["employee"])
    with app.app_context():
        app.guard.create_user("erin", PASSWORD)
        app.guard.policies.add("p", "erin", "/report", "GET")
        key = app.guard.create_api_key("erin")
    client, browser = app.test_client(), app.test_client()
    pair = tokens(client, "erin", PASSWORD)
    assert (
        browser.post("/auth/login", json={"login": "erin", "password": PASSWORD}).status_code == 200
    )
    credentials: list[Callable[[], Any]] = [
        lambda: client.get("/store", headers=bearer(pair["access_token"])),
        lambda: client.get("/store", headers={"X-API-Key": key}),
        lambda: browser.get("/store"),
    ]
    assert [check().status_code for check in credentials] == [200, 200, 200]

    with app.app_context():
        assert app.guard.users.delete("erin")
        assert not [rule for rule in app.guard.policies.list() if "erin" in rule]
    assert rows_naming(app.guard.users.engine, "erin") == []
    assert [check().status_code for check in credentials] == [401, 401, 401]
    assert refresh(client, pair["refresh_token"]).status_code == 401

    # The login registered again starts from nothing: no old token, no old grant.
    with app.app_context():
        app.guard.create_user("erin", PASSWORD, roles=[])
        assert app.guard.policies.roles_for("erin") == ["employee"]  # GUARD_DEFAULT_ROLES only
        assert not app.guard.enforce("erin", "/report", "GET")
    assert client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
    assert refresh(client, pair["refresh_token"]).status_code == 401
    assert client.get("/me", headers=basic("erin", PASSWORD)).status_code == 200


def test_deleting_a_user_is_one_transaction_with_its_rules(tmp_path: Path) -> None:
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'guard.db'}")
    with app.app_context():
        app.guard.create_user("erin", PASSWORD, roles=["employee"])
        engine = app.guard.users.engine
        with engine.begin() as connection:  # the last statement of the delete will fail
            connection.exec_driver_sql("DROP TABLE guard_login_stamps")
        with pytest.raises(PolicyError):
            app.guard.users.delete("erin")
        assert app.guard.users.get("erin") is not None
    assert rows_naming(engine, "erin") == [("g", "erin", "employee")]


def test_a_new_account_never_inherits_grants_that_predate_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'guard.db'}", GUARD_REGISTRATION=True)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["guard", "role", "add", "newhire", "manager"]).exit_code == 0
    client = app.test_client()
    answer = client.post("/auth/register", json={"login": "newhire", "password": PASSWORD})
    # Registration answers alike for free, taken and role-named logins (test_login_endpoints)...
    free = client.post("/auth/register", json={"login": "freshname", "password": PASSWORD})
    assert (answer.status_code, answer.json) == (free.status_code, free.json)
    assert b"manager" not in answer.data  # the policy is not shown to anonymous clients
    with app.app_context():  # ...but creates no account for a name the policy already uses
        assert app.guard.users.get("newhire") is None
        assert app.guard.users.get("freshname") is not None
    created = runner.invoke(
        args=["guard", "user", "create", "newhire", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert created.exit_code == 1 and "g, newhire, manager" in created.output
    assert client.get("/store", headers=basic("newhire", PASSWORD)).status_code == 401


def test_with_a_user_prefix_a_deleted_user_leaves_no_grant_to_a_namesake(tmp_path: Path) -> None:
    # Rules are written for the subject (GUARD_USER_PREFIX + login): deleting the account and
    # checking a new login must look for that subject, not the bare login.
    app = make_app(
        tmp_path,
        f"sqlite:///{tmp_path / 'guard.db'}",
        GUARD_USER_PREFIX="user:",
        GUARD_REGISTRATION=True,
    )
    with app.app_context():
        app.guard.create_user("erin", PASSWORD, roles=["manager"])
        app.guard.policies.add("p", "user:erin", "/report", "GET")
    client = app.test_client()
    assert client.get("/store", headers=basic("erin", PASSWORD)).status_code == 200
    with app.app_context():
        assert app.guard.users.delete("erin")
    assert rows_naming(app.guard.users.engine, "user:erin") == []
    other = "another long password!"
    assert (
        client.post("/auth/register", json={"login": "erin", "password": other}).status_code == 202
    )
    assert client.get("/me", headers=basic("erin", other)).status_code == 200  # created...
    assert client.get("/store", headers=basic("erin", other)).status_code == 403  # ...with nothing
    # Rules written for the subject before the account exists refuse the login, as without a
    # prefix; a role name is no subject any more ("user:manager" is not "manager").
    assert app.test_cli_runner().invoke(args=["guard", "role", "add", "user:newhire", "manager"])
    created = app.test_cli_runner().invoke(
        args=["guard", "user", "create", "newhire", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert created.exit_code == 1 and "g, user:newhire, manager" in created.output
    with app.app_context():
        app.guard.create_user("manager", PASSWORD, roles=[])
    assert client.get("/store", headers=basic("manager", PASSWORD)).status_code == 403


def test_revoke_user_with_an_external_user_store(tmp_path: Path, password_hashes: Any) -> None:
    app = make_app(
        tmp_path, f"sqlite:///{tmp_path / 'guard.db'}", GUARD_GET_USER_PASS=password_hashes.get
    )
    client = app.test_client()
    pair = tokens(client, "alice", PASSWORDS["alice"])
    assert client.get("/me", headers=bearer(pair["access_token"])).status_code == 200
    with app.app_context():
        app.guard.revoke_user("alice")  # alice is not in the built-in store
    assert client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
    assert refresh(client, pair["refresh_token"]).status_code == 401
    assert (
        client.get(
            "/me", headers=bearer(tokens(client, "alice", PASSWORDS["alice"])["access_token"])
        ).status_code
        == 200
    )


@pytest.mark.parametrize("change", ["password", "disable"])
def test_tokens_issued_before_a_password_change_or_a_disable_are_refused(
    change: str, tmp_path: Path
) -> None:
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'guard.db'}")
    with app.app_context():
        app.guard.create_user("erin", PASSWORD)
    client = app.test_client()
    pair = tokens(client, "erin", PASSWORD)
    with app.app_context():
        if change == "password":
            app.guard.set_password("erin", "another long password")
        else:
            app.guard.set_active("erin", False)
            app.guard.set_active("erin", True)
    assert client.get("/me", headers=bearer(pair["access_token"])).status_code == 401
    assert refresh(client, pair["refresh_token"]).status_code == 401


# -- 2. logins named like roles ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "why", "rule"),
    [
        ("employee", "role name", "g, manager, employee"),  # the role side of a g row
        ("manager", "rules already name it", "g, manager, employee"),  # member-only role
        ("auditor", "rules already name it", "p, auditor, /report, GET"),  # a p subject only
        ("staff", "routes declare it", None),  # a role only a route declaration requires
    ],
)
def test_a_login_named_like_a_role_is_refused_everywhere(
    login: str, why: str, rule: str | None, tmp_path: Path
) -> None:
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'guard.db'}", GUARD_REGISTRATION=True)
    client = app.test_client()
    answer = client.post("/auth/register", json={"login": login, "password": PASSWORD})
    # registration answers as for a free login (test_login_endpoints) but creates nothing
    assert answer.status_code == 202 and why not in answer.get_data(as_text=True)
    with app.app_context():
        assert app.guard.users.get(login) is None
    created = app.test_cli_runner().invoke(
        args=["guard", "user", "create", login, "--password-stdin"], input=PASSWORD + "\n"
    )
    assert created.exit_code == 1 and why in created.output and (rule or why) in created.output
    with app.app_context(), pytest.raises(LoginUnavailable, match=why) as refused:
        app.guard.create_user(login, PASSWORD)
    assert refused.value.rule == rule
    assert client.get("/store", headers=basic(login, PASSWORD)).status_code == 401
    with app.app_context():
        app.guard.create_user("zoe", PASSWORD, roles=["employee"])  # an unclaimed login works
    assert client.get("/store", headers=basic("zoe", PASSWORD)).status_code == 200


# -- 5. refresh tokens work once --------------------------------------------------------------


def race(count: int, action: Callable[[], Any]) -> list[Any]:
    """``action()`` in ``count`` threads released together; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = action()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_refresh_token_sent_concurrently_is_redeemed_once(database: str, tmp_path: Path) -> None:
    app = make_app(tmp_path, database)
    with app.app_context():
        app.guard.create_user("erin", PASSWORD)
    for _ in range(3):  # a race may be won by luck once: three rounds
        token = tokens(app.test_client(), "erin", PASSWORD)["refresh_token"]
        answers = race(8, lambda token=token: refresh(app.test_client(), token))
        won = [answer.json for answer in answers if answer.status_code == 200]
        assert len(won) == 1 and sorted({a.status_code for a in answers}) == [200, 401]
        # The losers reused the token: the winner's new tokens belong to a revoked family.
        client = app.test_client()
        assert client.get("/me", headers=bearer(won[0]["access_token"])).status_code == 401
        assert refresh(client, won[0]["refresh_token"]).status_code == 401


def test_reusing_a_rotated_refresh_token_revokes_its_family(tmp_path: Path) -> None:
    app = make_app(tmp_path, None, GUARD_GET_USER_PASS={"bob": _hash(PASSWORDS["bob"])}.get)
    client = app.test_client()
    first = tokens(client, "bob", PASSWORDS["bob"])
    second = refresh(client, first["refresh_token"]).json
    third = refresh(client, second["refresh_token"]).json
    other = tokens(client, "bob", PASSWORDS["bob"])  # another login: another family
    for access in (second["access_token"], third["access_token"]):
        assert client.get("/me", headers=bearer(access)).status_code == 200
    assert refresh(client, first["refresh_token"]).status_code == 401  # the stolen copy
    for access in (second["access_token"], third["access_token"]):
        assert client.get("/me", headers=bearer(access)).status_code == 401
    assert refresh(client, third["refresh_token"]).status_code == 401
    assert client.get("/me", headers=bearer(other["access_token"])).status_code == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_a_revoked_family_takes_the_access_token_of_the_login_with_it(tmp_path: Path) -> None:
    # /auth/token's access token is in the family of the refresh token issued with it: a thief
    # reusing that refresh token must not leave the access token it came with alive.
    app = make_app(tmp_path, None, GUARD_GET_USER_PASS={"bob": _hash(PASSWORDS["bob"])}.get)
    client = app.test_client()
    first = tokens(client, "bob", PASSWORDS["bob"])
    other = tokens(client, "bob", PASSWORDS["bob"])
    second = refresh(client, first["refresh_token"]).json
    assert client.get("/me", headers=bearer(first["access_token"])).status_code == 200
    assert refresh(client, first["refresh_token"]).status_code == 401  # reuse
    for access in (first["access_token"], second["access_token"]):
        assert client.get("/me", headers=bearer(access)).status_code == 401
    assert client.get("/me", headers=bearer(other["access_token"])).status_code == 200


def _hash(password: str) -> str:
    from flask_casbin_guard.authn.passwords import PasswordHasher

    return PasswordHasher().hash(password)


# -- 6. revocations survive restarts ----------------------------------------------------------


@pytest.mark.parametrize("policy", ["csv", "none", "database"])
def test_revocations_survive_a_restart(policy: str, tmp_path: Path) -> None:
    where = {
        "csv": str(POLICIES / "rbac_policy.csv"),
        "none": None,
        "database": f"sqlite:///{tmp_path / 'guard.db'}",
    }[policy]
    getter = {"bob": _hash(PASSWORDS["bob"]), "alice": _hash(PASSWORDS["alice"])}.get
    app = make_app(tmp_path, where, GUARD_GET_USER_PASS=getter)
    client, browser = app.test_client(), app.test_client()
    logged_out = tokens(client, "bob", PASSWORDS["bob"])
    rotated = tokens(client, "bob", PASSWORDS["bob"])
    everywhere = tokens(client, "alice", PASSWORDS["alice"])
    kept = tokens(client, "bob", PASSWORDS["bob"])
    csrf = browser.post("/auth/login", json={"login": "bob", "password": PASSWORDS["bob"]})
    cookie = browser.get_cookie("session")
    assert cookie is not None
    assert client.post("/auth/revoke", json={"token": logged_out["access_token"]}).json
    assert refresh(client, rotated["refresh_token"]).status_code == 200
    with app.app_context():
        app.guard.revoke_user("alice")
    logout = browser.post("/auth/logout", headers={"X-CSRF-Token": csrf.json["csrf_token"]})
    assert logout.json == {"logged_out": True}

    restarted = make_app(tmp_path, where, GUARD_GET_USER_PASS=getter)
    client = restarted.test_client()
    client.set_cookie("session", cookie.value)  # the cookie copied before the logout
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers=bearer(logged_out["access_token"])).status_code == 401
    assert refresh(client, rotated["refresh_token"]).status_code == 401
    assert client.get("/me", headers=bearer(everywhere["access_token"])).status_code == 401
    # The reuse revoked the family, the access token issued with the refresh token included.
    assert client.get("/me", headers=bearer(rotated["access_token"])).status_code == 401
    assert client.get("/me", headers=bearer(kept["access_token"])).status_code == 200


def test_no_persistent_place_for_revocations_refuses_to_start(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the instance folder should be")
    app = Flask(__name__, instance_path=str(blocked / "instance"))
    app.config.update(TESTING=True, GUARD_JWT_SECRET=JWT_SECRET, GUARD_AUTH=["bearer"])
    app.get("/me", authorize="AUTH", endpoint="me")(lambda: "me")
    with pytest.raises(ConfigurationError, match="persistent place"):
        app.guard.enforce("alice", "x", "y")
    memory = Flask(__name__, instance_path=str(tmp_path / "instance"))
    memory.config.update(
        GUARD_JWT_SECRET=JWT_SECRET, GUARD_AUTH=["bearer"], GUARD_REVOCATION_STORE="sqlite://"
    )
    memory.get("/me", authorize="AUTH", endpoint="me")(lambda: "me")
    with pytest.raises(ConfigurationError, match="next restart"):
        memory.guard.enforce("alice", "x", "y")


def test_expired_revocations_are_purged(tmp_path: Path) -> None:
    app = make_app(tmp_path, str(POLICIES / "rbac_policy.csv"), GUARD_GET_USER_PASS=lambda _: None)
    store = sa.create_engine(f"sqlite:///{tmp_path / 'instance' / 'guard-revocations.db'}")
    with app.app_context():
        token = app.guard.create_token("bob")
        app.guard.create_token("bob")  # the store opens with the app; fill it behind its back
    with store.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO guard_revoked_tokens VALUES ('long-gone', :t)"),
            {"t": time.time() - 60},
        )
    assert app.test_client().post("/auth/revoke", json={"token": token}).status_code == 200
    with store.connect() as connection:
        kept = connection.execute(sa.text("SELECT jti FROM guard_revoked_tokens")).all()
    store.dispose()
    assert [row[0] for row in kept] != [] and "long-gone" not in [row[0] for row in kept]


def test_a_role_declared_only_on_a_class_based_view_is_refused_as_a_login(
    tmp_path: Path,
) -> None:
    # The role exists nowhere in the policy: only a MethodView's declaration names it.
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'guard.db'}", GUARD_REGISTRATION=True)

    class Audit(MethodView):
        def get(self) -> str:
            return "audit log"

    app.add_url_rule("/audit", view_func=Audit.as_view("audit"), authorize="auditor_role")
    client = app.test_client()
    answer = client.post("/auth/register", json={"login": "auditor_role", "password": PASSWORD})
    assert answer.status_code == 202  # as for any login (test_login_endpoints)
    with app.app_context():
        assert app.guard.users.get("auditor_role") is None
    assert client.get("/audit", headers=basic("auditor_role", PASSWORD)).status_code == 401
