"""The engine seen through the guard: dev-mode explain header, custom functions, cache size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flask
import pytest

from conftest import POLICIES
from flask_casbin_guard import CasbinGuard, ConfigurationError, Flask
from helpers import basic

BOB = basic("bob", "bob-password")


def make_app(guard_config: dict[str, Any], **extra: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, **extra)

    @app.post("/store/<sid>", authorize=("store", "sid", "manager"))
    def store(sid: int) -> dict[str, int]:
        return {"sid": sid}

    return app


def test_dev_mode_explains_decisions(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config, GUARD_MODE="dev").test_client()
    allowed = client.post("/store/7", headers=BOB)
    assert (
        allowed.headers["X-Guard-Explain"] == "allow manager store:7 (rule: bob, store:7, manager)"
    )
    denied = client.post("/store/8", headers=BOB)
    assert denied.status_code == 403
    assert denied.headers["X-Guard-Explain"] == "deny manager store:8 (no rule matched)"


def test_prod_mode_never_reveals_rules(guard_config: dict[str, Any]) -> None:
    client = make_app(guard_config).test_client()
    for sid in (7, 8):
        response = client.post(f"/store/{sid}", headers=BOB)
        assert "X-Guard-Explain" not in response.headers
        assert b"store:" not in response.get_data()


def test_custom_matcher_functions(guard_config: dict[str, Any], tmp_path: Path) -> None:
    model = (
        (POLICIES / "rbac_model.conf")
        .read_text()
        .replace("r.obj == p.obj", "sameStore(r.obj, p.obj)")
    )
    policy = tmp_path / "p.csv"
    policy.write_text("p, bob, store:7, manager\n")
    app = make_app(guard_config, GUARD_MODEL=model, GUARD_POLICY=str(policy))
    calls: list[tuple[str, str]] = []

    def same_store(request_obj: str, policy_obj: str) -> bool:
        calls.append((request_obj, policy_obj))
        return request_obj.lstrip("store:0") == policy_obj.lstrip("store:0")

    app.guard.add_function("sameStore", same_store)
    client = app.test_client()
    assert client.post("/store/7", headers=BOB).status_code == 200
    assert client.post("/store/9", headers=BOB).status_code == 403
    assert calls  # our function decided
    with pytest.raises(ConfigurationError):
        app.guard.add_function("not a name", same_store)


def test_functions_registered_while_serving_rebuild_the_engine(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    model = (
        (POLICIES / "rbac_model.conf")
        .read_text()
        .replace("r.obj == p.obj", "r.obj == p.obj || anyStore(r.obj)")
    )
    app = make_app(guard_config, GUARD_MODEL=model, GUARD_DECISION_CACHE_SIZE=0)
    app.guard.add_function("anyStore", lambda obj: False)
    client = app.test_client()
    assert client.post("/store/9", headers=BOB).status_code == 403
    app.guard.add_function("anyStore", lambda obj: obj.startswith("store:"))
    assert client.post("/store/9", headers=BOB).status_code == 200


def test_decision_cache_size_is_configurable(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config, GUARD_DECISION_CACHE_SIZE=0)
    assert app.test_client().post("/store/7", headers=BOB).status_code == 200
    bad = make_app(guard_config, GUARD_DECISION_CACHE_SIZE=-1)
    with pytest.raises(ConfigurationError, match="GUARD_DECISION_CACHE_SIZE"):
        bad.test_client().post("/store/7", headers=BOB)


def test_validate_reports_the_engine(guard_config: dict[str, Any]) -> None:
    app = make_app(guard_config)
    result = app.test_cli_runner().invoke(args=["guard", "policy", "validate"])
    assert "engine: indexed" in result.output


def test_dev_mode_explains_every_refusal(guard_config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config, GUARD_MODE="dev")
    guard = CasbinGuard(app)
    dave = basic("dave", "dave-password")  # an auditor, not an employee
    alice = basic("alice", "alice-password")  # an employee
    app.add_url_rule("/staff", "staff", guard.authorize("employee")(lambda: "staff"))
    app.add_url_rule("/closed", "closed", guard.authorize("CLOSE")(lambda: "closed"))
    app.add_url_rule("/report", "report", guard.authorize("ROUTE")(lambda: "report"))
    app.add_url_rule("/forgotten", "forgotten", lambda: "forgotten")
    client = app.test_client()

    def explained(path: str, headers: dict[str, str], status: int) -> str:
        response = client.get(path, headers=headers)
        assert response.status_code == status, path
        return str(response.headers.get("X-Guard-Explain"))

    assert explained("/staff", dave, 403) == "deny role employee for 'dave'"
    assert explained("/staff", alice, 200) == "allow role employee for 'alice'"
    assert "closed route" in explained("/closed", dave, 403)
    assert "not covered by any declaration" in explained("/forgotten", dave, 403)
    assert "no credentials" in explained("/staff", {}, 401)
    assert explained("/report", alice, 403) == "deny GET /report (no rule matched)"
    assert explained("/report", dave, 200) == "allow GET /report (rule: auditor, /report, GET)"
