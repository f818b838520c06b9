"""Typed parameters over HTTP: every source, injections, strict mode and registration checks."""

from __future__ import annotations

import dataclasses
import io
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import annotated_types as at
import flask
import pydantic
import pytest
from flask.sessions import SessionMixin
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import FileStorage

from flask_casbin_guard import (
    Blueprint,
    Body,
    CasbinGuard,
    ConfigurationError,
    Cookie,
    CurrentUser,
    File,
    Flask,
    Form,
    Header,
    Identity,
    Json,
    Path,
    Query,
)
from helpers import basic

ALICE = basic("alice", "alice-password")


@dataclasses.dataclass
class Line:
    product: str
    quantity: Annotated[int, at.Gt(0)]


class Item(pydantic.BaseModel):
    name: str
    price: Decimal


class Database:
    """Stands in for a per-request database session an app provides."""

    opened = 0

    def __init__(self) -> None:
        Database.opened += 1


@pytest.fixture
def app(guard_config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, SECRET_KEY="test-session-key")
    guard = app.guard

    @guard.provider(Database)
    def open_database() -> Database:
        return Database()

    @app.get("/search", authorize="OPEN")
    def search(
        q: str,
        page: Annotated[int, at.Ge(1)] = 1,
        order: Literal["asc", "desc"] = "asc",
        tags: list[str] | None = None,
        class_: str = "any",
    ) -> dict[str, Any]:
        return {"q": q, "page": page, "order": order, "tags": tags, "class": class_}

    @app.post("/order/<uuid:oid>", authorize="AUTH")
    def order(oid: uuid.UUID, lines: list[Line], note: str = "") -> dict[str, Any]:
        return {
            "oid": str(oid),
            "lines": [dataclasses.asdict(line) for line in lines],
            "note": note,
        }

    @app.post("/item", authorize="AUTH")
    def item(item: Annotated[Item, Body()]) -> dict[str, Any]:
        return {"name": item.name, "price": str(item.price)}

    @app.post("/sources/<int:n>", authorize="AUTH")
    def sources(
        n: int,
        token: Annotated[str, Header("X-Api-Token")],
        x_trace: Annotated[int, Header()] = 0,
        theme: Annotated[str, Cookie()] = "light",
        q: Annotated[str, Query()] = "",
        f: Annotated[str, Form()] = "",
        j: Annotated[str, Json()] = "",
    ) -> dict[str, Any]:
        return {"n": n, "token": token, "trace": x_trace, "theme": theme, "q": q, "f": f, "j": j}

    @app.post("/upload", authorize="AUTH")
    def upload(
        doc: FileStorage, extra: Annotated[list[FileStorage], File("more")]
    ) -> dict[str, Any]:
        return {"doc": doc.filename, "size": len(doc.read()), "more": [f.filename for f in extra]}

    @app.get("/me", authorize="AUTH")
    def me(
        user: CurrentUser,
        who: Identity,
        request: flask.Request,
        session: SessionMixin,
        guard: CasbinGuard,
        db: Database,
    ) -> dict[str, Any]:
        return {
            "user": user,
            "scheme": who.scheme,
            "path": request.path,
            "session": isinstance(session, SessionMixin),
            "guard": guard is app.guard,
            "db": isinstance(db, Database),
        }

    @app.get("/maybe", authorize="OPEN")
    def maybe(user: CurrentUser | None) -> dict[str, Any]:
        return {"user": user}

    @app.get("/strict", authorize="OPEN", strict=True)
    def strict(a: int = 0) -> dict[str, int]:
        return {"a": a}

    @app.post("/rest", authorize="OPEN")
    def rest(a: int, **others: Any) -> dict[str, Any]:
        return {"a": a, "others": others}

    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_query_values_and_defaults(client: FlaskClient) -> None:
    assert client.get("/search?q=tea").json == {
        "q": "tea", "page": 1, "order": "asc", "tags": None, "class": "any",
    }  # fmt: skip
    response = client.get("/search?q=tea&page=3&order=desc&tags=a&tags=b&class=green")
    assert response.json == {
        "q": "tea", "page": 3, "order": "desc", "tags": ["a", "b"], "class": "green",
    }  # fmt: skip


def test_every_problem_in_one_400(client: FlaskClient) -> None:
    response = client.get("/search?page=0&order=up&q=a&q=b")
    assert response.status_code == 400
    assert response.json["details"] == [
        {"param": "q", "source": "query", "expected": "a single value", "received": None},
        {"param": "page", "source": "query", "expected": "an integer (>= 1)", "received": "0"},
        {"param": "order", "source": "query", "expected": "one of 'asc', 'desc'", "received": "up"},
    ]


def test_json_body_fields_with_nested_dataclasses(client: FlaskClient) -> None:
    oid = str(uuid.uuid4())
    good = {"lines": [{"product": "tea", "quantity": 2}], "note": "x"}
    assert client.post(f"/order/{oid}", json=good, headers=ALICE).json == {"oid": oid, **good}
    bad = client.post(
        f"/order/{oid}", json={"lines": [{"product": "tea", "quantity": 0}, {}]}, headers=ALICE
    )
    assert bad.status_code == 400
    assert [(d["param"], d["received"]) for d in bad.json["details"]] == [
        ("lines[0].quantity", "0"),
        ("lines[1].product", None),
        ("lines[1].quantity", None),
    ]
    assert client.post("/order/not-a-uuid", json=good, headers=ALICE).status_code == 404  # routing


def test_pydantic_body(client: FlaskClient) -> None:
    assert client.post("/item", json={"name": "tea", "price": "2.50"}, headers=ALICE).json == {
        "name": "tea",
        "price": "2.50",
    }
    bad = client.post("/item", json={"name": "tea", "price": "cheap"}, headers=ALICE)
    assert bad.status_code == 400
    assert bad.json["details"][0]["param"] == "item.price"
    missing = client.post("/item", headers=ALICE)
    assert missing.json["details"] == [
        {"param": "item", "source": "body", "expected": "a Item object", "received": None}
    ]


def test_headers_cookies_and_marked_sources(client: FlaskClient) -> None:
    client.set_cookie("theme", "dark")
    response = client.post(
        "/sources/5?q=query&f=not-form",
        data={"f": "form", "j": "not-json"},
        headers={**ALICE, "X-Api-Token": "t0k", "X-Trace": "12"},
    )
    assert response.json == {
        "n": 5, "token": "t0k", "trace": 12, "theme": "dark", "q": "query", "f": "form", "j": "",
    }  # fmt: skip
    bad = client.post("/sources/5", headers={**ALICE, "X-Trace": "many"})
    assert [(d["param"], d["source"]) for d in bad.json["details"]] == [
        ("X-Api-Token", "header"),
        ("X-Trace", "header"),
    ]
    assert bad.json["details"][0]["received"] is None  # "token" names never echo


def test_uploaded_files(client: FlaskClient) -> None:
    data = {
        "doc": (io.BytesIO(b"hello"), "a.txt"),
        "more": [(io.BytesIO(b"1"), "b.txt"), (io.BytesIO(b"2"), "c.txt")],
    }
    response = client.post("/upload", data=data, headers=ALICE, content_type="multipart/form-data")
    assert response.json == {"doc": "a.txt", "size": 5, "more": ["b.txt", "c.txt"]}
    missing = client.post("/upload", data={}, headers=ALICE, content_type="multipart/form-data")
    assert [d["param"] for d in missing.json["details"]] == ["doc", "more"]


def test_injections_by_type(client: FlaskClient) -> None:
    before = Database.opened
    assert client.get("/me", headers=ALICE).json == {
        "user": "alice", "scheme": "basic", "path": "/me", "session": True, "guard": True, "db": True,
    }  # fmt: skip
    assert Database.opened == before + 1  # one per request that asks
    assert client.get("/maybe").json == {"user": None}
    assert client.get("/maybe", headers=ALICE).json == {"user": "alice"}
    assert client.get("/maybe", headers=basic("alice", "wrong")).status_code == 401


def test_strict_mode_and_remaining_parameters(client: FlaskClient) -> None:
    assert client.get("/strict?a=1").json == {"a": 1}
    refused = client.get("/strict?a=1&b=2&c=3")
    assert [d["param"] for d in refused.json["details"]] == ["b", "c"]
    assert client.post("/rest?x=1", json={"a": 1, "y": [2]}).json == {
        "a": 1,
        "others": {"x": "1", "y": [2]},
    }


def test_route_checks_run_before_the_body_is_parsed(client: FlaskClient) -> None:
    # An anonymous caller with a malformed body learns nothing about parameters.
    response = client.post("/item", data="{not json", content_type="application/json")
    assert response.status_code == 401


def test_async_view_binding(guard_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(guard_config)

    @app.post("/a/<int:n>", authorize="AUTH")
    async def handler(n: int, line: Line, user: CurrentUser) -> dict[str, Any]:
        return {"n": n, "product": line.product, "user": user}

    client = app.test_client()
    body = {"line": {"product": "tea", "quantity": 1}}
    assert client.post("/a/3", json=body, headers=ALICE).json == {
        "n": 3,
        "product": "tea",
        "user": "alice",
    }
    assert client.post("/a/3", json={"line": {}}, headers=ALICE).status_code == 400


class Money(Decimal):
    pass


def test_custom_converter(guard_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(guard_config)

    @app.guard.converter(Money, expected="an amount like 12.50 EUR")
    def parse_money(text: str) -> Money:
        return Money(text.removesuffix(" EUR"))

    @app.get("/pay", authorize="OPEN")
    def pay(amount: Money, split: list[Money] | None = None) -> dict[str, Any]:
        return {"amount": str(amount), "split": [str(s) for s in split or []]}

    client = app.test_client()
    assert client.get("/pay?amount=12.50 EUR&split=1&split=2 EUR").json == {
        "amount": "12.50",
        "split": ["1", "2"],
    }
    bad = client.get("/pay?amount=lots")
    assert bad.json["details"][0]["expected"] == "an amount like 12.50 EUR"


def test_extension_mode_and_blueprints_share_the_binder(guard_config: dict[str, Any]) -> None:
    app = flask.Flask(__name__)
    app.config.update(guard_config)
    guard = CasbinGuard(app)
    bp = Blueprint("bp", __name__, url_prefix="/org/<int:org>")

    @bp.get("/team/<name>", authorize="AUTH", strict=True)
    def team(org: int, name: str, user: CurrentUser, size: int = 1) -> dict[str, Any]:
        return {"org": org, "name": name, "user": user, "size": size}

    app.register_blueprint(bp)

    @app.get("/plain")
    @guard.authorize("AUTH", strict=True)
    def plain(n: list[int]) -> dict[str, Any]:
        return {"n": n}

    client = app.test_client()
    assert client.get("/org/4/team/red?size=2", headers=ALICE).json == {
        "org": 4, "name": "red", "user": "alice", "size": 2,
    }  # fmt: skip
    assert client.get("/org/4/team/red?sise=2", headers=ALICE).status_code == 400
    assert client.get("/plain?n=1&n=2", headers=ALICE).json == {"n": [1, 2]}


# --- registration-time checks ------------------------------------------------------------


def _register(guard_config: dict[str, Any], rule: str, view: Any, **options: Any) -> None:
    app = Flask(__name__)
    app.config.update(guard_config)
    app.add_url_rule(rule, view_func=view, **options)


def _bad_rule_converter(sid: str) -> None: ...
def _bad_uuid(oid: int) -> None: ...
def _two_markers(a: Annotated[int, Query(), Form()]) -> None: ...
def _marked_path_var(sid: Annotated[int, Query()]) -> None: ...
def _path_marker_elsewhere(x: Annotated[int, Path()]) -> None: ...
def _file_marker_on_int(x: Annotated[int, File()]) -> None: ...
def _marker_on_injection(user: Annotated[CurrentUser, Query()]) -> None: ...
def _unsupported(x: bytes) -> None: ...
def _bad_default(x: int = "1") -> None: ...  # type: ignore[assignment]
def _none_default(x: int = None) -> None: ...  # type: ignore[assignment]  # noqa: RUF013
def _user_on_open(user: CurrentUser) -> None: ...
def _objperm_on_injection(sid: CurrentUser) -> None: ...


@pytest.mark.parametrize(
    ("rule", "view", "options", "fragment"),
    [
        ("/s/<int:sid>", _bad_rule_converter, {}, "rule converts it to int"),
        ("/s/<uuid:oid>", _bad_uuid, {}, "rule converts it to UUID"),
        ("/x", _two_markers, {}, "several source markers"),
        ("/s/<sid>", _marked_path_var, {}, "variable of the rule"),
        ("/x", _path_marker_elsewhere, {}, "marked Path()"),
        ("/x", _file_marker_on_int, {}, "File() needs a FileStorage"),
        ("/x", _marker_on_injection, {}, "takes no Query()"),
        ("/x", _unsupported, {}, "unsupported type 'bytes'"),
        ("/x", _bad_default, {}, "default '1' is not a int"),
        ("/x", _none_default, {}, "'int | None'"),
        ("/x", _user_on_open, {"authorize": "OPEN"}, "is OPEN"),
        (
            "/x/<sid>",
            _objperm_on_injection,
            {"authorize": ("store", "sid", "read")},
            "not a request parameter",
        ),
    ],
)
def test_registration_errors_name_endpoint_and_parameter(
    guard_config: dict[str, Any], rule: str, view: Any, options: dict[str, Any], fragment: str
) -> None:
    options.setdefault("authorize", "AUTH")
    with pytest.raises(ConfigurationError) as info:
        _register(guard_config, rule, view, **options)
    message = str(info.value)
    assert f"endpoint {view.__name__!r}" in message
    assert fragment in message


# --- fuzzing: bad input is a 400, never a 500 ----------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_KEYS = st.sampled_from(["q", "page", "order", "tags", "class", "lines", "note", "x"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(_KEYS, st.text(max_size=15)), max_size=6))
def test_any_query_string_is_200_or_400(client: FlaskClient, pairs: list[tuple[str, str]]) -> None:
    response = client.get("/search", query_string=pairs)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json["details"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(_KEYS, _JSON, max_size=4) | _JSON)
def test_any_json_body_is_200_or_400(app: Flask, client: FlaskClient, body: Any) -> None:
    with app.app_context():  # a token: an argon2 check per example would be slow
        auth = {"Authorization": f"Bearer {app.guard.create_token('alice')}"}
    oid = "12345678-1234-5678-1234-567812345678"
    response = client.post(f"/order/{oid}", json=body, headers=auth)
    assert response.status_code in (200, 400)
    item = client.post("/item", json=body, headers=auth)
    assert item.status_code in (200, 400)
