"""Policy patterns run in linear time (issue 23 item 1, "Trust IV"): attacks through HTTP.

An administrator (or whoever holds the admin API) writes a pattern that backtracks
catastrophically in Python's ``re``: ``^doc:(a+)+$`` for ``regexMatch``, ``doc.(a+)+`` for
``keyMatch2`` (pycasbin turns it into ``^doc.(a+)+$``). On pycasbin, one request on
``doc:aaaa…!`` then decides for a time doubling with each ``a`` (about 2.5 s at 26, 13 s at 28),
holding the GIL: the whole worker stalls (and the thread waiting on it too: the deadline is
checked on the time taken, once the request is over). Here the pattern runs on RE2: the hostile request
decides within a deadline derived from a baseline request, in a thread so that a regression
fails the test instead of hanging it. Patterns RE2 cannot run exactly are refused when they
are written (admin API 400, CLI error, ``PolicyError``) and when a stored policy is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest
from click.testing import Result

from flask_casbin_guard import CasbinGuard, Flask, PolicyError
from flask_casbin_guard.admin import admin_blueprint
from flask_casbin_guard.authz.engine import PolicyEngine
from flask_casbin_guard.store.csv import PolicyRow
from helpers import basic, timed, within

ADMIN = basic("carol", "carol-password")
READER = basic("alice", "alice-password")
#: Python's re takes about 13 s on it (doubling per character: 2.5 s at 26); RE2 microseconds
HOSTILE = "a" * 28 + "!"

MODEL = """[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && {function}(r.obj, p.obj) && r.act == p.act
"""
#: function -> (a pattern that backtracks catastrophically in re, one RE2 cannot run exactly)
PATTERNS = {
    "regexMatch": ("^doc:(a+)+$", "^doc:(?!secret)"),
    "keyMatch2": ("doc.(a+)+", "doc.(a)\\1"),
}


def make_app(guard_config: dict[str, Any], tmp_path: Path, function: str) -> Flask:
    model = tmp_path / "model.conf"
    model.write_text(MODEL.format(function=function))
    policy = tmp_path / "policy.csv"
    policy.write_text("g, carol, manager\ng, alice, reader\n")
    app = Flask(__name__)
    app.config.update(
        guard_config, GUARD_AUTH=["basic"], GUARD_MODEL=str(model), GUARD_POLICY=str(policy)
    )
    app.register_blueprint(admin_blueprint(authorize="manager"), url_prefix="/guard")

    @app.get("/doc/<name>", authorize=("doc", "name", "read"))
    def doc(name: str) -> str:
        return name

    return app


def rule(pattern: str) -> dict[str, Any]:
    return {"ptype": "p", "values": ["reader", pattern, "read"]}


@pytest.mark.parametrize("function", sorted(PATTERNS))
def test_a_catastrophic_pattern_decides_in_bounded_time(
    guard_config: dict[str, Any], tmp_path: Path, function: str
) -> None:
    client = make_app(guard_config, tmp_path, function).test_client()
    written = client.post("/guard/policies", json=rule(PATTERNS[function][0]), headers=ADMIN)
    assert written.status_code == 201, written.json
    # The rule is in force: it allows what it matches.
    assert client.get("/doc/aaaa", headers=READER).status_code == 200

    def hostile() -> None:
        assert client.get(f"/doc/{HOSTILE}", headers=READER).status_code == 403

    baseline = min(timed(lambda: client.get("/doc/bbbb", headers=READER)) for _ in range(5))
    deadline = max(1.0, 100 * baseline)
    took = within(deadline, hostile)
    assert took is not None and took < deadline, f"{function}: {took} s, deadline {deadline} s"


@pytest.mark.parametrize("function", sorted(PATTERNS))
def test_a_pattern_re2_cannot_run_is_refused_by_the_admin_api(
    guard_config: dict[str, Any], tmp_path: Path, function: str
) -> None:
    client = make_app(guard_config, tmp_path, function).test_client()
    pattern = PATTERNS[function][1]
    refused = client.post("/guard/policies", json=rule(pattern), headers=ADMIN)
    assert refused.status_code == 400
    detail = refused.json["details"][0]["expected"]
    assert "cannot run in linear time" in detail and repr(pattern) in detail, detail
    assert client.get("/guard/policies?ptype=p", headers=ADMIN).json == {"rules": []}


@pytest.mark.parametrize("function", sorted(PATTERNS))
def test_refused_through_the_python_api_and_the_cli(
    guard_config: dict[str, Any], tmp_path: Path, function: str
) -> None:
    app = make_app(guard_config, tmp_path, function)
    guard: CasbinGuard = app.extensions["casbin_guard"]
    pattern = PATTERNS[function][1]
    with app.app_context(), pytest.raises(PolicyError, match="linear time"):
        guard.policies.add("p", "reader", pattern, "read")
    result: Result = app.test_cli_runner().invoke(
        args=["guard", "policy", "add", "p", "reader", pattern, "read"]
    )
    assert result.exit_code != 0
    assert "linear time" in result.output, result.output
    with app.app_context():
        assert guard.policies.list("p") == []


def test_a_stored_pattern_re2_cannot_run_is_refused_at_load(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    app = make_app(guard_config, tmp_path, "regexMatch")
    guard: CasbinGuard = app.extensions["casbin_guard"]
    client = app.test_client()
    assert client.post("/guard/policies", json=rule("^doc:a+$"), headers=ADMIN).status_code == 201
    # Written past the guard: the next reload keeps the last good policy and names the row.
    policy = tmp_path / "policy.csv"
    policy.write_text(policy.read_text() + "p, reader, ^doc:(?=b), read\n")
    with app.app_context(), pytest.raises(PolicyError, match=r"\^doc:\(\?=b\).*linear time"):
        guard.policies.reload(force=True)
    assert client.get("/doc/aaaa", headers=READER).status_code == 200
    assert client.get("/doc/bbbb", headers=READER).status_code == 403
    # And a fresh app refuses to start on it.
    with pytest.raises(PolicyError, match="linear time"):
        CasbinGuard(_fresh(guard_config, tmp_path))


def _fresh(guard_config: dict[str, Any], tmp_path: Path) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(
        guard_config,
        GUARD_AUTH=["basic"],
        GUARD_MODEL=str(tmp_path / "model.conf"),
        GUARD_POLICY=str(tmp_path / "policy.csv"),
    )
    return app


@pytest.mark.parametrize("function", sorted(PATTERNS))
def test_pycasbins_own_evaluation_runs_in_linear_time_too(function: str) -> None:
    """Models the index does not take, and values only pycasbin answers, go to its Enforcer:
    it runs the same RE2 functions."""
    rows = [
        PolicyRow("g", ("alice", "reader")),
        PolicyRow("p", ("reader", PATTERNS[function][0], "read")),
    ]
    engine = PolicyEngine(MODEL.format(function=function), rows, fast=False, cache_size=0)
    assert engine.enforce("alice", "doc:aaaa", "read") is True

    def hostile() -> None:
        assert engine.enforce("alice", f"doc:{HOSTILE}", "read") is False

    baseline = min(timed(lambda: engine.enforce("alice", "doc:bbbb", "read")) for _ in range(5))
    deadline = max(1.0, 100 * baseline)
    took = within(deadline, hostile)
    assert took is not None and took < deadline, f"{function}: {took} s, deadline {deadline} s"


def test_a_keymatch4_pattern_with_groups_of_its_own_is_refused_when_re2_cannot_run_it(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    # pycasbin answers most requests on "(a)\1" and fails only on those it matches ("aa"), so
    # the pattern was accepted and every request reaching it failed under RE2: refused instead.
    client = make_app(guard_config, tmp_path, "keyMatch4").test_client()
    refused = client.post("/guard/policies", json=rule("(a)\\1"), headers=ADMIN)
    assert refused.status_code == 400
    assert "backreferences" in refused.json["details"][0]["expected"]
    assert client.get("/guard/policies?ptype=p", headers=ADMIN).json == {"rules": []}
