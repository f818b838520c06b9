"""guard.policies: changes validated first, persisted, swapped atomically; CSV, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import POLICIES
from flask_casbin_guard import CasbinGuard, Flask, PolicyError
from flask_casbin_guard.authz.engine import EngineHolder, PolicyEngine
from flask_casbin_guard.policies import PolicyManager
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.database import DatabaseStore
from helpers import DOMAIN_MODEL, basic

MODEL = (POLICIES / "rbac_model.conf").read_text()
ARITIES = {"p": 3, "g": 2}


@pytest.fixture(params=["csv", "sqlite", "postgresql"])
def policy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "csv":
        path = tmp_path / "policy.csv"
        path.write_text("g, alice, employee\n")
        yield str(path)
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policy.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def app_for(guard_config: dict[str, Any], policy: str, **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=policy, **extra)

    @app.get("/staff", authorize="employee")
    def staff() -> str:
        return "staff"

    return app


def test_changes_are_applied_and_persisted(guard_config: dict[str, Any], policy: str) -> None:
    app = app_for(guard_config, policy)
    client = app.test_client()
    bob = basic("bob", "bob-password")
    with app.app_context():
        policies = app.guard.policies
        policies.add_role("alice", "employee")  # present already for CSV: no-op
        assert client.get("/staff", headers=bob).status_code == 403
        assert policies.add_role("bob", "employee") is True
        assert policies.add_role("bob", "employee") is False
        assert client.get("/staff", headers=bob).status_code == 200  # same process: at once
        assert policies.roles_for("bob") == ["employee"]
        assert policies.add("p", "employee", "store:1", "read")
        assert ("p", "employee", "store:1", "read") in policies.list()
        assert policies.list("g")[-1] == ("g", "bob", "employee")
    # A fresh app on the same store sees the persisted policy.
    again = app_for(guard_config, policy)
    with again.app_context():
        assert again.guard.has_role("bob", "employee")
        assert again.guard.enforce("bob", "store:1", "read")
        assert again.guard.policies.remove_role("bob", "employee") is True
        assert again.guard.policies.remove("p", "nobody", "x", "y") is False
        assert not again.guard.has_role("bob", "employee")


def test_a_refused_change_changes_nothing(guard_config: dict[str, Any], policy: str) -> None:
    app = app_for(guard_config, policy)
    with app.app_context():
        policies = app.guard.policies
        policies.add_role("alice", "manager")
        before, engine = policies.list(), policies.holder.engine
        with pytest.raises(PolicyError, match="cycle"):
            policies.add_role("manager", "alice")  # a role cycle: refused before writing
        with pytest.raises(PolicyError, match="rows take 3 values"):
            policies.add("p", "a", "b")
        with pytest.raises(PolicyError, match="no domain"):
            policies.add_role("a", "b", domain="d1")
        assert policies.list() == before
        assert policies.holder.engine is engine
    fresh = app_for(guard_config, policy)
    with fresh.app_context():
        assert fresh.guard.policies.list() == before  # nothing reached the store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[DatabaseStore]:
    store = DatabaseStore(f"sqlite:///{tmp_path / 'p.db'}", ARITIES)
    yield store
    store.close()


def test_a_store_failure_leaves_memory_unchanged(sqlite_store: DatabaseStore) -> None:
    store = sqlite_store
    holder = EngineHolder(PolicyEngine(MODEL, []))
    manager = PolicyManager(MODEL, "test", store, holder)
    manager.add_role("alice", "employee")
    engine = holder.engine
    with store.engine.begin() as connection:  # the table disappears under us
        connection.exec_driver_sql("DROP TABLE casbin_rule")
    with pytest.raises(PolicyError):
        manager.add_role("bob", "employee")
    assert holder.engine is engine
    assert holder.engine.has_role("alice", "employee") and not holder.engine.has_role(
        "bob", "employee"
    )


def test_import_and_export(guard_config: dict[str, Any], policy: str, tmp_path: Path) -> None:
    incoming = tmp_path / "in.csv"
    incoming.write_text("# new\ng, carol, employee\np, employee, store:2, read\n")
    app = app_for(guard_config, policy)
    with app.app_context():
        policies = app.guard.policies
        assert policies.import_csv(incoming) == 2
        assert app.guard.has_role("carol", "employee")
        bad = tmp_path / "bad.csv"
        bad.write_text("g, dave, employee\ng, broken\n")
        with pytest.raises(PolicyError, match="bad.csv, line 2"):
            policies.import_csv(bad)
        assert not app.guard.has_role("dave", "employee")
        assert policies.import_csv(incoming, replace=True) == 2
        assert not app.guard.has_role("alice", "employee")
        out = tmp_path / "out.csv"
        assert policies.export_csv(out) == 2
        assert out.read_text() == "g, carol, employee\np, employee, store:2, read\n"


def test_another_writer_is_picked_up_on_commit(sqlite_store: DatabaseStore) -> None:
    other = DatabaseStore(sqlite_store.engine.url.render_as_string(), ARITIES)
    first = PolicyManager(MODEL, "t", sqlite_store, EngineHolder(PolicyEngine(MODEL, [])))
    second = PolicyManager(MODEL, "t", other, EngineHolder(PolicyEngine(MODEL, [])))
    first.add_role("alice", "employee")
    second.add_role("bob", "employee")  # second's store already holds alice's row
    assert second.list("g") == [("g", "alice", "employee"), ("g", "bob", "employee")]
    assert first.reload() is True
    assert first.list("g") == second.list("g")
    assert first.reload() is False  # nothing new
    other.close()


def test_announcements(sqlite_store: DatabaseStore) -> None:
    store = sqlite_store
    manager = PolicyManager(MODEL, "t", store, EngineHolder(PolicyEngine(MODEL, [])))
    seen: list[int] = []
    manager.notify = seen.append
    manager.add_role("a", "b")
    manager.add_role("a", "b")  # no change: no announcement
    manager.change(added=[PolicyRow("g", ("c", "b"))], removed=[PolicyRow("g", ("a", "b"))])
    assert seen == [1, 2] or seen == [1, 3]  # the combined change may take two transactions
    assert seen[-1] == store.version()


def test_without_a_store_changes_stay_in_memory(guard_config: dict[str, Any]) -> None:
    app = flask_app = Flask(__name__)
    flask_app.config.update(guard_config, GUARD_POLICY=None)
    with app.app_context():
        app.guard.policies.add_role("bob", "employee")
        assert app.guard.has_role("bob", "employee")


def test_extension_mode_exposes_the_same_api(guard_config: dict[str, Any], tmp_path: Path) -> None:
    import flask

    app = flask.Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=f"sqlite:///{tmp_path / 'x.db'}")
    guard = CasbinGuard(app)
    with app.app_context():
        guard.policies.add_role("bob", "employee")
        assert guard.has_role("bob", "employee")


def test_database_reloads_reuse_validated_rows(sqlite_store: DatabaseStore) -> None:
    sqlite_store.add([PolicyRow("g", ("alice", "employee"))])
    _, first = sqlite_store.load_versioned()
    sqlite_store.add([PolicyRow("g", ("bob", "employee"))])
    _, again = sqlite_store.load_versioned()
    assert again[0] is first[0] and again[1] == PolicyRow("g", ("bob", "employee"))
    with sqlite_store.engine.begin() as connection:  # a bad row written by another tool
        connection.exec_driver_sql("INSERT INTO casbin_rule (ptype, v0) VALUES ('g', 'lonely')")
    with pytest.raises(PolicyError, match="casbin_rule id 3"):
        sqlite_store.load_versioned()


def test_naming_finds_every_rule_that_gives_a_name_a_meaning_as_subject() -> None:
    model = DOMAIN_MODEL.replace("g = _, _, _", "g = _, _, _\ng2 = _, _")
    rows = [
        PolicyRow("g", ("alice", "admin", "tenant1")),
        PolicyRow("g2", ("doc1", "docs")),
        PolicyRow("p", ("editor", "tenant1", "docs", "write")),
    ]
    manager = PolicyManager(model, "test", None, EngineHolder(PolicyEngine(model, rows)))
    for name, row in [
        ("alice", rows[0]),  # a member: grants written before its account
        ("admin", rows[0]),  # a role
        ("tenant1", rows[0]),  # a domain: refused too, a conservative rule costs little
        ("docs", rows[1]),  # any position of any role row type
        ("editor", rows[2]),  # a p subject
    ]:
        assert manager.naming(name) == row
    assert manager.naming("write") is None and manager.naming("zoe") is None
