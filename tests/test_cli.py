"""``flask guard ...`` commands, run through Flask's CLI runner on a real app."""

from __future__ import annotations

from typing import Any

import flask
import jwt
import pytest
import sqlalchemy as sa

from flask_casbin_guard import CasbinGuard, Flask, PolicyError
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.csvstore import write_policy_file
from helpers import DOMAIN_MODEL, JWT_SECRET


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


def test_check_puts_the_domain_where_the_model_does(
    guard_config: dict[str, Any], tmp_path: Any
) -> None:
    # Casbin's own example order: r = sub, obj, dom, act. --domain is the domain wherever it is.
    model = DOMAIN_MODEL.replace("r = sub, dom, obj, act", "r = sub, obj, dom, act")
    policy = tmp_path / "policy.csv"
    policy.write_text("g, alice, admin, acme\np, admin, acme, report:1, read\n")
    app = Flask(__name__)
    app.config.update(
        guard_config, GUARD_MODEL=model, GUARD_POLICY=str(policy), GUARD_TENANT="header:X-Tenant"
    )
    runner = app.test_cli_runner()
    args = ["guard", "check", "alice", "report:1", "read", "--domain"]
    assert runner.invoke(args=[*args, "acme"]).output == "allow\n"
    assert runner.invoke(args=[*args, "globex"]).exit_code == 3


def test_policy_list_and_roles(app: Flask) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["guard", "policy", "list", "--ptype", "g"])
    assert listed.output.splitlines()[0] == "g, alice, employee"
    assert all(line.startswith("g, ") for line in listed.output.splitlines())
    roles = runner.invoke(args=["guard", "role", "list", "carol"])
    assert roles.output.split() == ["manager", "employee"]  # direct roles first


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
    assert claims["exp"] - claims["iat"] == pytest.approx(1800)
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


@pytest.fixture
def db_app(guard_config: dict[str, Any], tmp_path: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=f"sqlite:///{tmp_path / 'cli.db'}")
    return app


def test_policy_and_role_changes(db_app: Flask, tmp_path: Any) -> None:
    runner = db_app.test_cli_runner()
    assert runner.invoke(args=["guard", "role", "add", "bob", "employee"]).output == "added\n"
    assert (
        runner.invoke(args=["guard", "role", "add", "bob", "employee"]).output
        == "already present\n"
    )
    assert runner.invoke(args=["guard", "role", "add", "employee", "staff"]).exit_code == 0
    assert runner.invoke(args=["guard", "role", "list", "bob"]).output == "employee\nstaff\n"
    added = runner.invoke(args=["guard", "policy", "add", "p", "staff", "store:1", "read"])
    assert added.output == "added\n"
    check = runner.invoke(args=["guard", "check", "bob", "store:1", "read", "--explain"])
    assert (check.exit_code, check.output) == (0, "allow\nrule: staff, store:1, read\n")
    assert runner.invoke(args=["guard", "role", "remove", "bob", "employee"]).output == "removed\n"
    missing = runner.invoke(args=["guard", "role", "remove", "bob", "employee"])
    assert (missing.exit_code, missing.output) == (1, "not present\n")
    assert runner.invoke(args=["guard", "check", "bob", "store:1", "read"]).exit_code == 3
    bad = runner.invoke(args=["guard", "policy", "add", "p", "only", "two"])
    assert bad.exit_code == 1 and "take 3 values" in bad.output
    cycle = runner.invoke(args=["guard", "role", "add", "staff", "employee"])
    assert cycle.exit_code == 1 and "cycle" in cycle.output
    domain = runner.invoke(args=["guard", "role", "add", "x", "y", "--domain", "t1"])
    assert domain.exit_code == 1 and "no domain" in domain.output


def test_import_export_with_progress(db_app: Flask, tmp_path: Any) -> None:
    source = tmp_path / "big.csv"
    source.write_text("".join(f"g, user{i}, employee\n" for i in range(12000)))
    runner = db_app.test_cli_runner()
    result = runner.invoke(args=["guard", "policy", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("12000 rule(s) added\n")
    target = tmp_path / "out.csv"
    exported = runner.invoke(args=["guard", "policy", "export", str(target)])
    assert exported.output == f"12000 rule(s) written to {target}\n"
    assert target.read_text() == source.read_text()
    broken = tmp_path / "broken.csv"
    broken.write_text("g, a, b\n" * 10 + "g, lonely\n")
    failed = runner.invoke(args=["guard", "policy", "import", "--replace", str(broken)])
    assert failed.exit_code == 1 and "broken.csv, line 11" in failed.output
    assert len(runner.invoke(args=["guard", "policy", "list"]).output.splitlines()) == 12000
    replaced = runner.invoke(
        args=["guard", "policy", "import", "--replace", str(source.parent / "out.csv")]
    )
    assert replaced.exit_code == 0


def test_routes_show_each_routes_effective_schemes(guard_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_AUTH=["bearer", "basic"])
    app.get("/any", authorize="AUTH", endpoint="any")(lambda: "x")
    app.get("/tokens", authorize="employee", authn="bearer", endpoint="tokens")(lambda: "x")
    app.get("/passwords", authorize="ROUTE", authn=["basic"], endpoint="passwords")(lambda: "x")
    app.get("/both", authorize="AUTH", authn=["basic", "bearer"], endpoint="both")(lambda: "x")
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "auth=bearer,basic " in lines["/any"]
    assert "auth=bearer " in lines["/tokens"]
    assert "auth=basic " in lines["/passwords"]
    assert "auth=bearer,basic " in lines["/both"]  # in GUARD_AUTH's order, as they are tried


def test_routes_flag_schemes_the_app_does_not_enable(guard_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_AUTH=["bearer"])
    app.get("/session", authorize="AUTH", authn="session", endpoint="session")(lambda: "x")
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert result.exit_code == 1
    assert "auth=NOT ENABLED: session" in result.output


def test_routes_exit_non_zero_when_an_endpoint_is_not_covered(
    guard_config: dict[str, Any],
) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config)
    guard = CasbinGuard(app)
    app.add_url_rule("/covered", "covered", guard.authorize("AUTH")(lambda: "x"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["guard", "routes"]).exit_code == 0
    app.add_url_rule("/forgotten", "forgotten", lambda: "x")
    result = runner.invoke(args=["guard", "routes"])
    assert result.exit_code == 1
    assert "1 endpoint(s) not covered" in result.output


def test_routes_with_a_default_declaration(guard_config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config, GUARD_DEFAULT_AUTHORIZE="OPEN")
    CasbinGuard(app)
    app.add_url_rule("/plain", "plain", lambda: "x")
    app.add_url_rule("/viewless", "viewless")  # no view function: answers 403 whatever the default
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    lines = {line.split()[0]: line for line in result.output.splitlines() if line[0] == "/"}
    assert "auth=-  authorize='OPEN' (GUARD_DEFAULT_AUTHORIZE)" in lines["/plain"]
    assert "UNCOVERED" in lines["/viewless"]
    assert result.exit_code == 1


def test_a_closed_static_endpoint_is_a_choice_not_a_gap(
    guard_config: dict[str, Any], tmp_path: Any
) -> None:
    app = flask.Flask(__name__, static_folder=str(tmp_path))
    app.config.update(guard_config, GUARD_OPEN_STATIC=False)
    CasbinGuard(app)
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert "static  auth=-  authorize=CLOSED: answers 403 (GUARD_OPEN_STATIC is false)" in (
        result.output
    )
    assert result.exit_code == 0


#: values a writer may be tempted to mangle: nested brackets with commas, quotes inside values,
#: and values a spreadsheet would run as formulas
TRICKY = [
    ("p", '=HYPERLINK("http://evil.example", "x")', "store:1", "read"),
    ("p", "keyMatch2(r.obj, /a/:id)", "it's", 'say "hi" [1, 2]'),
    ("p", "+1", "-1", "@team"),
    ("g", "名前", "employee"),
]


def test_a_database_export_imports_again_values_kept(db_app: Flask, tmp_path: Any) -> None:
    with db_app.app_context():
        for ptype, *values in TRICKY:
            assert db_app.guard.policies.add(ptype, *values)
    runner = db_app.test_cli_runner()
    target = tmp_path / "out.csv"
    exported = runner.invoke(args=["guard", "policy", "export", str(target)])
    assert exported.exit_code == 0, exported.output
    assert exported.stdout == f"4 rule(s) written to {target}\n"
    # The documented choice: values are kept (the file must import as the same rules), and
    # the export warns that a spreadsheet would run some of them.
    assert "warning: 2 rule(s)" in exported.stderr and "=HYPERLINK" in exported.stderr
    assert "p, +1, -1, @team\n" in target.read_text()
    to_stdout = runner.invoke(args=["guard", "policy", "export", "-"])
    assert to_stdout.stdout == target.read_text()
    fresh = Flask(__name__)
    fresh.config.update(db_app.config, GUARD_POLICY=f"sqlite:///{tmp_path / 'again.db'}")
    imported = fresh.test_cli_runner().invoke(args=["guard", "policy", "import", str(target)])
    assert imported.exit_code == 0, imported.output
    with fresh.app_context():
        assert fresh.guard.policies.list() == TRICKY


def test_a_failed_export_leaves_the_target_as_it_was(db_app: Flask, tmp_path: Any) -> None:
    target = tmp_path / "missing-dir" / "out.csv"
    failed = db_app.test_cli_runner().invoke(args=["guard", "policy", "export", str(target)])
    assert failed.exit_code == 1 and not target.exists()
    kept = tmp_path / "kept.csv"
    kept.write_text("g, old, rule\n")
    with db_app.app_context():
        db_app.guard.policies.add_role("bob", "employee")
        engine = db_app.guard.policies.holder.engine
        bad = PolicyRow("g", ("bob", "report(2024"))  # as if a store let one through
        with pytest.raises(PolicyError):
            write_policy_file(kept, [*engine.rows, bad], engine.arities)
    assert kept.read_text() == "g, old, rule\n"


def test_policy_validate_names_every_bad_row(guard_config: dict[str, Any], tmp_path: Any) -> None:
    csv_policy = tmp_path / "bad.csv"
    csv_policy.write_text("g, alice, employee\np, a, , c\ng, lonely\np, a, report(2024, read\n")
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_POLICY=str(csv_policy))
    failed = app.test_cli_runner().invoke(args=["guard", "policy", "validate"])
    assert failed.exit_code == 1
    for line in (2, 3, 4):
        assert f"bad.csv, line {line}: " in failed.stderr
    assert "3 problem(s)" in failed.stderr
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    db = Flask(__name__)
    db.config.update(guard_config, GUARD_POLICY=url)
    with db.app_context():
        db.guard.policies.add_role("a", "b")
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # written by another tool, bypassing the guard
        connection.exec_driver_sql(
            "INSERT INTO casbin_rule (ptype, v0, v1) VALUES ('g', 'b', 'a'), ('g', 'x', NULL)"
        )
    engine.dispose()
    failed = db.test_cli_runner().invoke(args=["guard", "policy", "validate"])
    assert failed.exit_code == 1
    assert "casbin_rule id 3: " in failed.stderr
    assert "role cycle through" in failed.stderr and "g, a, b" in failed.stderr
    assert "g, b, a" in failed.stderr
