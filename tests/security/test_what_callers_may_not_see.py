"""Trust IV (issue 23): what a caller may not see, attacked through HTTP.

- A caller denied on an object cannot tell whether it exists (item 3).
- Equal numbers name one object, so a deny cannot be passed by spelling a number otherwise (4).
- The view runs as the user the decision was made for, whatever other credentials ride along (7).
- Only the static endpoints Flask registered for a static folder are open as static files (10).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient

from conftest import PASSWORDS
from flask_casbin_guard import CasbinGuard, ConfigurationError, CurrentUser, Identity, current_user
from flask_casbin_guard import Flask as GuardedFlask
from flask_casbin_guard.auth import auth_blueprint
from helpers import bearer

SECRET = "a-session-secret-of-more-than-32-characters"


def plain_app(config: dict[str, Any], **extra: Any) -> tuple[flask.Flask, CasbinGuard]:
    app = flask.Flask("trust4")
    app.config.update(config, **extra)
    return app, CasbinGuard(app)


def fake(user: str) -> dict[str, str]:
    return {"X-Fake-User": user}


def same_answer(first: Any, second: Any) -> None:
    """Status, body and headers (but the date) are identical."""
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()
    headers = [dict(r.headers) for r in (first, second)]
    for found in headers:
        found.pop("Date", None)
    assert headers[0] == headers[1]


# -- 3. no existence oracle --------------------------------------------------------------------
EXISTENCE_POLICY = """\
p, alice, doc:7, read
p, bob, doc:7, read
p, alice, store:1, manage
"""


def existence_app(config: dict[str, Any], write_file: Any, *, run_async: bool) -> flask.Flask:
    app, guard = plain_app(
        config, GUARD_AUTH=["fake"], GUARD_POLICY=write_file("p.csv", EXISTENCE_POLICY)
    )
    docs = {7, 9}
    app.extensions["loaded"] = loaded = []

    if run_async:

        @guard.object_loader("doc")
        async def load_doc(did: int) -> str | None:
            await asyncio.sleep(0)
            loaded.append(did)
            return f"doc:{did}" if did in docs else None

    else:

        @guard.object_loader("doc")
        def load_doc(did: int) -> str | None:
            loaded.append(did)
            return f"doc:{did}" if did in docs else None

    @app.get("/doc/<int:did>")
    @guard.authorize(("doc", "did", "read"))
    def doc(did: int) -> dict[str, int]:
        return {"did": did}

    @app.get("/doc/<int:did>/store/<int:sid>")
    @guard.authorize([("doc", "did", "read"), ("store", "sid", "manage")])
    def doc_in_store(did: int, sid: int) -> dict[str, int]:
        return {"did": did, "sid": sid}

    @app.get("/managed/<int:did>")
    @guard.authorize(["manager", ("doc", "did", "read")])
    def managed(did: int) -> dict[str, int]:
        return {"did": did}

    return app


@pytest.mark.parametrize("run_async", [False, True], ids=["sync_loader", "async_loader"])
def test_a_denied_caller_gets_the_same_answer_for_present_and_missing_objects(
    guard_config: dict[str, Any], write_file: Any, run_async: bool, caplog: Any
) -> None:
    client = existence_app(guard_config, write_file, run_async=run_async).test_client()
    with caplog.at_level("INFO", logger="flask_casbin_guard.audit"):
        present = client.get("/doc/9", headers=fake("mallory"))
        missing = client.get("/doc/8", headers=fake("mallory"))
    same_answer(present, missing)
    assert present.status_code == 404
    # The log, which the caller never sees, keeps the difference.
    assert [r.guard["event"] for r in caplog.records] == ["access_denied", "refused"]
    assert present.json == {"error": "not_found", "message": "object not found", "status": 404}
    # A caller who may read it is served; a missing object is a 404 for him too.
    assert client.get("/doc/7", headers=fake("alice")).json == {"did": 7}
    same_answer(client.get("/doc/8", headers=fake("alice")), missing)


def test_checks_that_need_no_object_come_before_any_loader(
    guard_config: dict[str, Any], write_file: Any
) -> None:
    app = existence_app(guard_config, write_file, run_async=False)
    client = app.test_client()
    # bob may read doc 7 but manage no store: the store decides, whatever the doc.
    present = client.get("/doc/7/store/1", headers=fake("bob"))
    missing = client.get("/doc/8/store/1", headers=fake("bob"))
    same_answer(present, missing)
    assert present.status_code == 403
    # A missing role is known before the object is looked for.
    same_answer(
        client.get("/managed/7", headers=fake("mallory")),
        client.get("/managed/8", headers=fake("mallory")),
    )
    assert app.extensions["loaded"] == []
    assert client.get("/doc/7/store/1", headers=fake("alice")).json == {"did": 7, "sid": 1}


# -- 7. the view runs as the user who was authorized ------------------------------------------
def two_identities_app(config: dict[str, Any]) -> flask.Flask:
    """Session first in GUARD_AUTH, routes that accept bearer tokens only."""
    app, guard = plain_app(config, SECRET_KEY=SECRET, GUARD_AUTH=["session", "bearer"])
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")
    app.extensions["before"] = before = []

    @app.before_request
    def note_the_user() -> None:
        before.append(guard.current_user if current_user else None)

    @app.get("/store/<int:sid>")
    @guard.authorize(("store", "sid", "manager"), authn="bearer")
    def store(sid: int, user: CurrentUser, identity: Identity) -> dict[str, Any]:
        return {"user": user, "identity": identity.login, "current_user": guard.current_user}

    @app.get("/hello")
    @guard.authorize("OPEN", authn="bearer")
    def hello(user: CurrentUser | None) -> dict[str, Any]:
        return {"user": user, "current_user": guard.current_user}

    return app


def session_of(client: FlaskClient, login: str) -> None:
    response = client.post("/auth/login", json={"login": login, "password": PASSWORDS[login]})
    assert response.status_code == 200, response.json


def test_the_view_gets_the_identity_the_decision_was_made_for(
    guard_config: dict[str, Any],
) -> None:
    app = two_identities_app(guard_config)
    client = app.test_client()
    session_of(client, "carol")  # a session cookie for carol, who manages store 1
    with app.app_context():
        bob = bearer(app.extensions["casbin_guard"].create_token("bob"))  # manages store 7
    answer = client.get("/store/7", headers=bob)
    assert answer.json == {"user": "bob", "identity": "bob", "current_user": "bob"}
    # bob decides: carol's session lends him nothing, and alone it is no credential here.
    assert client.get("/store/1", headers=bob).status_code == 403
    assert client.get("/store/1").status_code == 401
    assert client.get("/hello", headers=bob).json == {"user": "bob", "current_user": "bob"}
    assert client.get("/hello").json == {"user": None, "current_user": None}
    # before_request functions see the caller the view sees, never carol.
    assert app.extensions["before"][-5:] == ["bob", "bob", None, "bob", None]


# -- 4. numbers are canonical before they become objects --------------------------------------
DENY_OVERRIDE = """\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.sub == p.sub && keyMatch(r.obj, p.obj) && r.act == p.act
"""
NUMBERS_POLICY = """\
p, alice, account:*, read, allow
p, alice, account:7, read, deny
p, alice, price:*, read, allow
p, alice, price:0, read, deny
p, alice, price:0.5, read, deny
p, alice, price:1000, read, deny
"""
#: spellings of the denied numbers, each equal to 7, 0, 0.5 or 1000
SEVEN = ["7", "7.0", "7.00", "70e-1", "0.7e1", "+7", "07", "7.000000000000000000000000000001e0"]
ZERO = ["0", "-0", "0.0", "-0.0", "+0", "0e5", "-0e-5", "00"]
HALF = ["0.5", "0.50", ".5", "5e-1", "50E-2", "+0.5"]
THOUSAND = ["1000", "1e3", "1E+3", "1000.0", "10e2", "0.001e6"]


def numbers_app(config: dict[str, Any], write_file: Any) -> flask.Flask:
    app, guard = plain_app(
        config,
        GUARD_AUTH=["fake"],
        GUARD_MODEL=DENY_OVERRIDE,
        GUARD_POLICY=write_file("numbers.csv", NUMBERS_POLICY),
    )

    @app.get("/account/<acct>")
    @guard.authorize(("account", "acct", "read"))
    def account(acct: float) -> dict[str, Any]:
        return {"acct": acct}

    @app.get("/daccount/<acct>")
    @guard.authorize(("account", "acct", "read"))
    def daccount(acct: Decimal) -> dict[str, Any]:
        return {"acct": str(acct)}

    @app.get("/iaccount/<acct>")
    @guard.authorize(("account", "acct", "read"))
    def iaccount(acct: int) -> dict[str, Any]:
        return {"acct": acct}

    @app.get("/price/<price>")
    @guard.authorize(("price", "price", "read"))
    def price(price: float) -> dict[str, Any]:
        return {"price": price}

    @app.route("/dprice", methods=["GET", "POST"])
    @guard.authorize(("price", "price", "read"))
    def dprice(price: Decimal) -> dict[str, Any]:
        return {"price": str(price)}

    return app


def test_every_spelling_of_a_denied_number_is_denied(
    guard_config: dict[str, Any], write_file: Any
) -> None:
    client = numbers_app(guard_config, write_file).test_client()
    alice = fake("alice")
    # "7.000000000000000000000000000001e0" is 7 as a float, not as a Decimal.
    for spelling in SEVEN:
        assert client.get(f"/account/{spelling}", headers=alice).status_code == 403, spelling
        decimal = client.get(f"/daccount/{spelling}", headers=alice).status_code
        assert decimal == (200 if "0001" in spelling else 403), spelling
    for spelling in ("7", "+7", "07", "007"):
        assert client.get(f"/iaccount/{spelling}", headers=alice).status_code == 403, spelling
    for spelling in ZERO + HALF + THOUSAND:
        assert client.get(f"/price/{spelling}", headers=alice).status_code == 403, spelling
        query = client.get("/dprice", query_string={"price": spelling}, headers=alice)
        assert query.status_code == 403, spelling
    for number in (0, 0.0, -0.0, "-0", 0.5, "0.50", 1000, 1e3, 1000.0, "1E+3"):
        response = client.post("/dprice", json={"price": number}, headers=alice)
        assert response.status_code == 403, number
    # Other numbers are served.
    for spelling in ("8", "7.5", "6.999", "70", "0.7"):
        assert client.get(f"/account/{spelling}", headers=alice).status_code == 200, spelling
        assert client.get(f"/daccount/{spelling}", headers=alice).status_code == 200, spelling
    for spelling in ("1", "0.25", "100", "-1", "1e-3", "1e300"):
        assert client.get(f"/price/{spelling}", headers=alice).status_code == 200, spelling


def test_booleans_cannot_name_objects(guard_config: dict[str, Any]) -> None:
    _, guard = plain_app(guard_config)
    view = guard.authorize(("flag", "on", "read"))

    def flag(on: bool) -> str:
        return "x"

    with pytest.raises(ConfigurationError, match="'on'.*bool"):
        view(flag)


# -- 10. deny by default holds for static files -----------------------------------------------
def static_app(config: dict[str, Any], tmp_path: Path) -> flask.Flask:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.txt").write_text("app static")
    (tmp_path / "bp").mkdir()
    (tmp_path / "bp" / "b.txt").write_text("blueprint static")
    app = flask.Flask("statics", static_folder=str(tmp_path / "app"), static_url_path="/static")
    app.config.update(config)
    CasbinGuard(app)
    app.extensions["ran"] = ran = []

    def secret(**kwargs: Any) -> str:
        ran.append(kwargs)
        return "secret"

    app.add_url_rule("/files/<path:p>", endpoint="files.static", view_func=secret)
    plain = flask.Blueprint("assets", __name__)  # no static folder
    plain.add_url_rule("/static/<path:filename>", endpoint="static", view_func=secret)
    app.register_blueprint(plain, url_prefix="/assets")
    real = flask.Blueprint(
        "theme", __name__, static_folder=str(tmp_path / "bp"), static_url_path="/static"
    )
    outer = flask.Blueprint("outer", __name__)
    outer.register_blueprint(real, url_prefix="/theme")
    app.register_blueprint(outer, url_prefix="/outer")
    return app


def test_only_real_static_endpoints_are_open(guard_config: dict[str, Any], tmp_path: Path) -> None:
    app = static_app(guard_config, tmp_path)
    client = app.test_client()
    for path, text in (("/static/a.txt", "app"), ("/outer/theme/static/b.txt", "blueprint")):
        with client.get(path) as response:  # a file response: closed, or a ResourceWarning
            assert response.get_data(as_text=True) == f"{text} static"
    for path in ("/files/x", "/assets/static/x"):
        assert client.get(path).status_code == 403, path
    assert app.extensions["ran"] == []
    result = app.test_cli_runner().invoke(args=["guard", "routes"])
    assert result.exit_code == 1
    for endpoint in ("files.static", "assets.static"):
        assert f"{endpoint}  auth=-  authorize=UNCOVERED" in result.output
    for endpoint in ("static", "outer.theme.static"):
        assert f"{endpoint}  auth=-  authorize=OPEN (static)" in result.output


def test_an_app_without_a_static_folder_has_no_open_static(
    guard_config: dict[str, Any],
) -> None:
    app = flask.Flask("no_statics", static_folder=None)
    app.config.update(guard_config)
    CasbinGuard(app)
    app.add_url_rule("/static/<path:p>", endpoint="static", view_func=lambda p: "secret")
    assert app.test_client().get("/static/x").status_code == 403


def test_the_seed_style_refuses_an_undeclared_fake_static_at_registration(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("app static")
    app = GuardedFlask("seed_statics", static_folder=str(tmp_path), static_url_path="/static")
    app.config.update(guard_config)
    real = flask.Blueprint("theme", __name__, static_folder=str(tmp_path), static_url_path="/s")
    app.register_blueprint(real, url_prefix="/theme")
    with pytest.raises(ConfigurationError, match="files.static"):
        app.add_url_rule("/files/<path:p>", endpoint="files.static", view_func=lambda p: "no")
    with pytest.raises(ConfigurationError, match="'static'"):
        app.add_url_rule("/other/<path:p>", endpoint="static", view_func=lambda p: "no")
    for path in ("/static/a.txt", "/theme/s/a.txt"):
        with app.test_client().get(path) as response:
            assert response.get_data(as_text=True) == "app static"
