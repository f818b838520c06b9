"""The acme example's flows over HTTP (Flask test client, real hashing, real JWT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples.acme.app import STORES, create_app
from flask.testing import FlaskClient

from helpers import basic, bearer

ALICE = basic("alice", "alice-pass")
BOB = basic("bob", "bob-pass")
CAROL = basic("carol", "carol-pass")


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    # Each test on its own database, seeded from policy.csv: the demo's own file is untouched.
    config = {"TESTING": True, "GUARD_POLICY": f"sqlite:///{tmp_path / 'acme.db'}"}
    return create_app(config).test_client()


def test_open_and_anonymous(client: FlaskClient) -> None:
    assert client.get("/").json == {"app": "acme", "stores": 2}
    assert client.get("/store").status_code == 401


def test_employees_list_stores(client: FlaskClient) -> None:
    assert client.get("/store", headers=BOB).json == {
        "stores": {"1": "Downtown", "2": "Harbour"},
        "user": "bob",
    }
    assert client.get("/store?pattern=Harb%25", headers=ALICE).json["stores"] == {"2": "Harbour"}
    assert client.get("/store?order=name", headers=ALICE).status_code == 200
    assert client.get("/store?order=size", headers=ALICE).status_code == 400
    assert client.get("/store", headers=CAROL).status_code == 403


def test_managers_change_their_own_store_only(client: FlaskClient) -> None:
    before = STORES[1]["stock"].get("kiwi", 0)
    ok = client.post("/store/01", data={"product": "kiwi", "quantity": "2"}, headers=ALICE)
    assert ok.status_code == 200
    assert ok.json == {"store": 1, "product": "kiwi", "quantity": before + 2}
    assert (
        client.post("/store/1", json={"product": "kiwi", "quantity": 1}, headers=BOB).status_code
        == 403
    )
    assert (
        client.post("/store/2", json={"product": "kiwi", "quantity": 1}, headers=BOB).status_code
        == 200
    )
    bad = client.post("/store/1", data={"product": "kiwi", "quantity": "lots"}, headers=ALICE)
    assert bad.status_code == 400
    assert bad.json["details"] == [
        {"param": "quantity", "source": "form", "expected": "an integer", "received": "lots"}
    ]


def test_stock_delivery_takes_a_typed_json_list(client: FlaskClient) -> None:
    before = STORES[1]["stock"].get("fig", 0)
    body = {"lines": [{"product": "fig", "quantity": 5}, {"product": "fig", "quantity": 1}]}
    response = client.put("/store/1/stock", json=body, headers=ALICE)
    assert response.json["stock"]["fig"] == before + 6
    bad = client.put(
        "/store/1/stock", json={"lines": [{"product": "fig", "quantity": 0}]}, headers=ALICE
    )
    assert bad.status_code == 400
    assert bad.json["details"][0]["param"] == "lines[0]"
    assert (
        client.put("/store/1/stock", json={**body, "extra": 1}, headers=ALICE).status_code == 400
    )  # strict
    assert client.put("/store/1/stock", json=body, headers=BOB).status_code == 403


def test_reports_by_route_permission(client: FlaskClient) -> None:
    assert client.get("/reports?day=2026-11-22", headers=CAROL).json["day"] == "2026-11-22"
    assert client.get("/reports?day=yesterday", headers=CAROL).status_code == 400
    assert client.get("/reports", headers=CAROL).status_code == 200
    assert client.head("/reports", headers=CAROL).status_code == 200
    assert client.get("/reports", headers=ALICE).status_code == 403


def test_admin_api_changes_take_effect_at_once(client: FlaskClient) -> None:
    assert client.get("/store", headers=CAROL).status_code == 403
    grant = client.post("/guard/roles", json={"user": "carol", "role": "employee"}, headers=ALICE)
    assert grant.status_code == 201
    assert client.get("/store", headers=CAROL).status_code == 200
    assert (
        client.post("/guard/roles", json={"user": "bob", "role": "x"}, headers=BOB).status_code
        == 403
    )


def test_closed_route(client: FlaskClient) -> None:
    assert client.delete("/store/1", headers=ALICE).status_code == 403


def test_session_login_and_token_endpoints(client: FlaskClient) -> None:
    login = client.post("/auth/login", json={"login": "bob", "password": "bob-pass"})
    assert login.status_code == 200
    assert client.get("/store").json["user"] == "bob"
    assert client.post("/auth/logout").status_code == 403  # CSRF token required
    headers = {"X-CSRF-Token": login.json["csrf_token"]}
    assert client.post("/auth/logout", headers=headers).json == {"logged_out": True}
    assert client.get("/store").status_code == 401
    tokens = client.post("/auth/token", data={"login": "bob", "password": "bob-pass"}).json
    assert client.get("/store", headers=bearer(tokens["access_token"])).status_code == 200


def test_login_returns_a_working_token(client: FlaskClient) -> None:
    token = client.post("/login", headers=ALICE).json["token"]
    assert client.get("/whoami", headers=bearer(token)).json == {"user": "alice"}
    assert (
        client.post(
            "/store/1", json={"product": "fig", "quantity": 1}, headers=bearer(token)
        ).status_code
        == 200
    )
    assert client.get("/whoami", headers=bearer(token + "x")).status_code == 401
    assert client.post("/login", headers=basic("alice", "wrong")).status_code == 401
