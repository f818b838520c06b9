"""The request path over HTTP: status codes, bodies, headers, order of checks, HEAD/OPTIONS."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from conftest import POLICIES
from flask_casbin_guard import Flask, current_user
from helpers import basic, bearer

ALICE = basic("alice", "alice-password")  # employee
BOB = basic("bob", "bob-password")  # employee, manager of store 7
DAVE = basic("dave", "dave-password")  # auditor: ROUTE /report, DELETE /item/<int:iid>
EMPLOYEE = basic("employee", "employee-password")  # a login equal to a role name


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def app(guard_config: dict[str, Any], calls: list[str]) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config)

    @app.get("/open", authorize="OPEN")
    def open_route() -> str:
        calls.append("open")
        return "open"

    @app.get("/open/me", authorize="OPEN")
    def open_me() -> dict[str, str | None]:
        return {"user": app.guard.current_user}

    @app.get("/auth", authorize="AUTH")
    def auth_route() -> dict[str, str]:
        calls.append("auth")
        return {"user": str(current_user)}

    @app.get("/closed", authorize="CLOSE")
    def closed() -> str:
        calls.append("closed")
        return "closed"

    @app.route("/staff", methods=["GET", "POST", "OPTIONS"], authorize="employee")
    def staff() -> str:
        calls.append("staff")
        return "staff"

    @app.post("/store/<sid>", authorize=("store", "sid", "manager"))
    def post_store(sid: int, product: str, quantity: int, note: str = "") -> dict[str, Any]:
        calls.append(f"store {sid}")
        return {"sid": sid, "product": product, "quantity": quantity, "note": note}

    @app.get("/report", authorize="ROUTE")
    def report() -> str:
        calls.append("report")
        return "report"

    @app.route("/item/<int:iid>", methods=["GET", "DELETE"], authorize="ROUTE")
    def item(iid: int) -> dict[str, int]:
        calls.append(f"item {iid}")
        return {"iid": iid}

    @app.get("/both/<sid>", authorize=["employee", ("store", "sid", "manager")])
    def both(sid: int) -> dict[str, int]:
        return {"sid": sid}

    @app.get("/async/<sid>", authorize="employee")
    async def async_view(sid: int, n: int = 1) -> dict[str, int]:
        return {"sid": sid, "n": n}

    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_open_route_needs_nothing(client: FlaskClient) -> None:
    assert client.get("/open").status_code == 200


def test_401_body_and_challenges(client: FlaskClient, calls: list[str]) -> None:
    response = client.get("/auth")
    assert response.status_code == 401
    assert response.json == {
        "error": "unauthorized",
        "message": "authentication required",
        "status": 401,
    }
    assert response.headers.getlist("WWW-Authenticate") == [
        'Bearer realm="test_pipeline"',
        'Basic realm="test_pipeline", charset="UTF-8"',
    ]
    assert response.headers["Cache-Control"] == "no-store"
    assert calls == []


def test_unknown_user_and_wrong_password_are_identical(client: FlaskClient) -> None:
    unknown = client.get("/auth", headers=basic("nobody", "alice-password"))
    wrong = client.get("/auth", headers=basic("alice", "not-her-password"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_data() == wrong.get_data()
    assert sorted(unknown.headers.items()) == sorted(wrong.headers.items())
    assert unknown.json == {
        "error": "unauthorized",
        "message": "invalid credentials",
        "status": 401,
    }


def test_403_has_no_challenge_and_never_runs_the_view(
    client: FlaskClient, calls: list[str]
) -> None:
    response = client.get("/staff", headers=DAVE)
    assert response.status_code == 403
    assert response.json == {"error": "forbidden", "message": "access denied", "status": 403}
    assert "WWW-Authenticate" not in response.headers
    assert calls == []


def test_close_refuses_everyone(client: FlaskClient, calls: list[str]) -> None:
    assert client.get("/closed").status_code == 403
    assert client.get("/closed", headers=ALICE).status_code == 403
    assert calls == []


def test_role_is_transitive(client: FlaskClient) -> None:
    # carol holds manager, and manager holds employee.
    assert client.get("/staff", headers=basic("carol", "carol-password")).status_code == 200


def test_object_permission_uses_the_converted_value(client: FlaskClient) -> None:
    body = {"product": "apple", "quantity": 3}
    for sid in ("7", "07", "007", "+7"):
        response = client.post(f"/store/{sid}", json=body, headers=BOB)
        assert response.status_code == 200, sid
        assert response.json["sid"] == 7
    assert client.post("/store/8", json=body, headers=BOB).status_code == 403
    assert client.post("/store/1", json=body, headers=BOB).status_code == 403


def test_400_lists_every_problem(client: FlaskClient, calls: list[str]) -> None:
    response = client.post("/store/7", json={"quantity": "three"}, headers=BOB)
    assert response.status_code == 400
    assert response.json == {
        "error": "bad_request",
        "message": "invalid request parameters",
        "status": 400,
        "details": [
            {
                "param": "product",
                "source": "json or query",
                "expected": "a string",
                "received": None,
            },
            {
                "param": "quantity",
                "source": "json",
                "expected": "an integer",
                "received": "three",
            },
        ],
    }
    form = client.post("/store/x", data={"product": "a", "quantity": "1.5"}, headers=BOB)
    assert [d["param"] for d in form.json["details"]] == ["sid", "quantity"]
    assert calls == []


def test_route_checks_come_before_parameters(client: FlaskClient) -> None:
    # Not allowed: 401/403 even though the body is invalid too, so nothing leaks about params.
    assert client.post("/store/7", json={"quantity": "x"}).status_code == 401
    assert client.get("/both/x", headers=DAVE).status_code == 403
    # Allowed on the route, so parameters are checked, then the object.
    assert client.get("/both/x", headers=ALICE).status_code == 400
    assert client.get("/both/7", headers=ALICE).status_code == 403
    assert client.get("/both/7", headers=BOB).json == {"sid": 7}


def test_list_declarations_need_every_item(client: FlaskClient) -> None:
    assert client.get("/both/1", headers=basic("carol", "carol-password")).status_code == 200
    assert client.get("/both/1", headers=BOB).status_code == 403


def test_route_permission_on_rule_template_and_method(client: FlaskClient) -> None:
    assert client.get("/report", headers=DAVE).status_code == 200
    assert client.get("/report", headers=ALICE).status_code == 403
    assert client.delete("/item/5", headers=DAVE).json == {"iid": 5}
    assert client.get("/item/5", headers=DAVE).status_code == 403  # only DELETE is granted


def test_head_is_decided_as_get(client: FlaskClient, calls: list[str]) -> None:
    assert client.head("/report", headers=DAVE).status_code == 200
    assert client.head("/report", headers=ALICE).status_code == 403
    assert client.head("/item/5", headers=DAVE).status_code == 403  # GET is not granted
    assert calls == ["report"]


def test_method_override_headers_change_nothing(client: FlaskClient, calls: list[str]) -> None:
    for header in ("X-HTTP-Method-Override", "X-Method-Override"):
        response = client.get("/item/5", headers={**DAVE, header: "DELETE"})
        assert response.status_code == 403
    assert client.get("/item/5?_method=DELETE", headers=DAVE).status_code == 403
    assert calls == []


def test_options(client: FlaskClient, calls: list[str]) -> None:
    automatic = client.options("/report")
    assert automatic.status_code == 200
    assert set(automatic.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert automatic.get_data() == b""
    # A route that lists OPTIONS itself is guarded like any method.
    assert client.options("/staff").status_code == 401
    assert client.options("/staff", headers=DAVE).status_code == 403
    assert calls == []


def test_a_login_named_like_a_role_is_decided_as_casbin_does(client: FlaskClient) -> None:
    # From an external user store, "employee" is Casbin's subject "employee". A role
    # declaration asks for the subject's roles (pycasbin's implicit roles), which never
    # include the subject itself: the login is not the role. Casbin's own matcher (ROUTE,
    # objects) does hold g(x, x), as pycasbin's enforce does. Account creation refuses such
    # logins; GUARD_USER_PREFIX keeps users from elsewhere apart (test_subjects.py).
    assert client.get("/auth", headers=EMPLOYEE).json == {"user": "employee"}
    assert client.get("/staff", headers=EMPLOYEE).status_code == 403
    assert client.get("/report", headers=EMPLOYEE).status_code == 403


def test_bearer_tokens(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        token = app.guard.create_token("alice")
    assert client.get("/staff", headers=bearer(token)).status_code == 200
    assert client.get("/staff", headers=bearer(token[:-2])).status_code == 401
    assert client.get("/staff", headers=bearer("garbage")).json["message"] == "invalid credentials"


def test_open_routes_authenticate_only_on_demand(client: FlaskClient) -> None:
    bad = basic("alice", "wrong")
    assert client.get("/open", headers=bad).status_code == 200
    assert client.get("/open/me", headers=bad).status_code == 401
    assert client.get("/open/me", headers=ALICE).json == {"user": "alice"}
    assert client.get("/open/me").json == {"user": None}


def test_html_for_browsers(client: FlaskClient) -> None:
    response = client.get("/auth", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 401
    assert response.mimetype == "text/html"
    assert b"401 authentication required" in response.get_data()
    assert client.get("/auth", headers={"Accept": "*/*"}).mimetype == "application/json"


def test_async_views(client: FlaskClient) -> None:
    assert client.get("/async/07?n=2", headers=ALICE).json == {"sid": 7, "n": 2}
    assert client.get("/async/7", headers=DAVE).status_code == 403
    assert client.get("/async/7?n=x", headers=ALICE).status_code == 400


def test_enforcement_errors_answer_503(guard_config: dict[str, Any], write_file: Any) -> None:
    model = (
        (POLICIES / "rbac_model.conf")
        .read_text()
        .replace("r.obj == p.obj", "ipMatch(r.obj, p.obj)")
    )
    app = Flask(__name__)
    app.config.update(
        guard_config,
        GUARD_MODEL=model,
        GUARD_POLICY=write_file("ip.csv", "p, alice, 10.0.0.0/8, read\n"),
    )

    @app.get("/net/<ip>", authorize=("net", "ip", "read"))
    def net(ip: str) -> str:
        return ip

    response = app.test_client().get("/net/10.1.1.1", headers=ALICE)  # "net:10.1.1.1": no IP
    assert response.status_code == 503
    assert response.json == {
        "error": "policy_unavailable",
        "message": "authorization is temporarily unavailable",
        "status": 503,
    }
    assert b"10.0.0.0" not in response.get_data()


def test_secrets_never_reach_logs_or_bodies(
    client: FlaskClient, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        token = app.guard.create_token("alice")
    responses = [
        client.get("/auth", headers=basic("alice", "s3cret-Pa55")),
        client.get("/staff", headers=basic("alice\r\nforged", "s3cret-Pa55")),
        client.get("/staff", headers=bearer(token + "tampered")),
        client.post(
            "/store/7",
            json={"product": "p", "quantity": "x", "password": "s3cret-Pa55"},
            headers=BOB,
        ),
    ]
    text = caplog.text + "".join(r.get_data(as_text=True) for r in responses)
    assert "s3cret-Pa55" not in text
    assert token not in text
    assert "\nforged" not in caplog.text  # CR/LF cannot start a new log line
    assert sum("-> 401" in r.getMessage() for r in caplog.records) == 3
