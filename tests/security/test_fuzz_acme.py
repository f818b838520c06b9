"""Hostile input against every acme route (and the /auth and /guard blueprints), with hypothesis.

Headers (garbled Basic, garbage and tampered JWTs, garbage and re-signed session cookies, API-key,
proxy and URL-rewrite headers), query strings, JSON and raw bodies (nested, deep, huge numbers,
NaN, wrong types, long strings) and path values. For every response: no 5xx, no stack trace, no
policy or model text (unless it was echoed from the request, or the caller is the policy admin
on the admin API), no secret (demo passwords, their hashes, the JWT secret, the session key,
the caller's token) in the body or headers; and no secret in any log record. Invalid credentials
never authenticate, and object permissions hold whatever the path value.

The app and its failed-login limiter live for the whole module: after a few dozen argon2
verifications the per-address limit answers 429 before any hash is checked, which keeps the
examples fast (429 is an acceptable answer to bad credentials).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import pytest
from examples.acme.app import create_app, load_users
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from flask_casbin_guard import Flask
from flask_casbin_guard.pipeline import GuardedRoute, route_of

JWT_SECRET = "fuzz-acme-jwt-secret-that-is-long-enough-0123456789"
SESSION_KEY = "fuzz-acme-session-key-0123456789abcdefghijklmnop"
#: the demo passwords (README.md) and what else must never leave the server
PASSWORDS = {"alice": "alice-pass", "bob": "bob-pass", "carol": "carol-pass"}
SECRETS = (*PASSWORDS.values(), *load_users().values(), JWT_SECRET, SESSION_KEY)
STACK_TRACE = ("Traceback", 'File "')
#: acme's role names, policy rows and model text
POLICY_TEXT = (
    "manager_store_1",
    "manager_store_2",
    "policy_admin",
    "p, ",
    "g, ",
    "[matchers]",
    "request_definition",
    "g(r.sub, p.sub)",
    "r.obj == p.obj",
)

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@dataclass(frozen=True)
class Route:
    method: str
    #: the rule with a sample value per variable
    path: str
    rule: str
    guarded: GuardedRoute

    @property
    def is_open(self) -> bool:
        return self.guarded.declaration.open

    @property
    def keys(self) -> list[str]:
        return [spec.key or spec.name for spec in self.guarded.plan.params if not spec.provider]


@dataclass
class Acme:
    app: Flask
    client: FlaskClient
    routes: list[Route]
    #: caller name -> request headers (valid bearer tokens, a session cookie, nothing)
    callers: dict[str, dict[str, str]]
    #: real tokens, to tamper with: access tokens by login, a refresh token, an expired token
    tokens: dict[str, str]
    secrets: tuple[str, ...]
    #: statuses answered in the current test, so a fuzzer cannot pass by never reaching a case
    seen: Counter[int] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Acme:
    """acme with its default failed-login limits, for the whole module."""
    return build_acme(tmp_path_factory.mktemp("fuzz") / "acme.db")


@pytest.fixture(scope="module")
def acme_unlimited(tmp_path_factory: pytest.TempPathFactory) -> Acme:
    """acme without failed-login limits: every password is really verified."""
    return build_acme(
        tmp_path_factory.mktemp("fuzz") / "acme.db",
        GUARD_AUTH_RATE_LIMIT="",
        GUARD_AUTH_IP_RATE_LIMIT="",
        GUARD_AUTH_LOGIN_CEILING="",
    )


def build_acme(db: Path, **config: Any) -> Acme:
    app = create_app(
        {
            "TESTING": True,  # an exception propagates into the test, with its traceback
            "GUARD_POLICY": f"sqlite:///{db}",
            "GUARD_JWT_SECRET": JWT_SECRET,
            "SECRET_KEY": SESSION_KEY,
            **config,
        }
    )
    samples = {"sid": "1", "user": "alice"}
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        guarded = route_of(app.view_functions[rule.endpoint])
        assert guarded is not None, rule
        path = app.url_map.bind("localhost").build(
            rule.endpoint, {name: samples.get(name, "1") for name in rule.arguments}
        )
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append(Route(method, path, rule.rule, guarded))
    with app.app_context():
        tokens = {login: app.guard.create_token(login) for login in PASSWORDS}
        tokens["refresh"] = app.guard.create_refresh_token("bob")
        tokens["expired"] = app.guard.create_token("alice", expires=dt.timedelta(seconds=-120))
    login = app.test_client().post("/auth/login", json={"login": "bob", "password": "bob-pass"})
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    callers = {login: {"Authorization": f"Bearer {tokens[login]}"} for login in PASSWORDS}
    callers |= {"anonymous": {}, "bob-cookie": {"Cookie": cookie}}
    return Acme(
        app,
        app.test_client(use_cookies=False),
        routes,
        callers,
        tokens,
        (*SECRETS, *tokens.values()),
    )


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger (flask_casbin_guard, werkzeug, acme...) at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name in ("flask_casbin_guard", "werkzeug", "acme"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    text = "\n".join(_record_text(record) for record in caplog.records)
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"secrets in the logs: {leaked}"


def _record_text(record: logging.LogRecord) -> str:
    extra = getattr(record, "guard", None)
    return f"{record.getMessage()} {extra!r} {record.exc_text or ''}"


def check(
    acme: Acme,
    route: Route,
    response: TestResponse,
    sent: str,
    caller: str,
    logs: pytest.LogCaptureFixture,
    start: int,
    admin: bool = False,
) -> None:
    """The properties every response has, whatever was sent.

    ``admin``: the caller may be the policy admin, whose admin API shows the policy.
    """
    status = response.status_code
    assert 200 <= status < 500, f"{status} for {sent}"
    text = response.get_data(as_text=True) + "\n" + str(response.headers)
    for marker in STACK_TRACE:
        assert marker not in text, f"stack trace for {sent}"
    leaked = [secret for secret in acme.secrets if secret in text]
    assert not leaked, f"secret {leaked} in the response to {sent}"
    if not ((admin or caller == "alice") and route.rule.startswith("/guard/")):
        policy = [marker for marker in POLICY_TEXT if marker in text and marker not in sent]
        assert not policy, f"policy text {policy} in the response to {sent}: {text[:500]}"
    logged = "\n".join(_record_text(record) for record in logs.records[start:])
    leaked = [secret for secret in acme.secrets if secret in logged]
    assert not leaked, f"secret {leaked} logged for {sent}"


def send(
    acme: Acme,
    logs: pytest.LogCaptureFixture,
    route: Route,
    caller: str,
    *,
    path: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    content_type: str | None = None,
    admin: bool = False,
) -> TestResponse:
    all_headers = {**acme.callers[caller], **(headers or {})}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    target = (path or route.path) + (f"?{query}" if query else "")
    start = len(logs.records)
    response = acme.client.open(target, method=route.method, headers=all_headers, data=data)
    sent = f"{route.method} {target} as {caller} {all_headers!r} {data[:300] if data else b''!r}"
    check(acme, route, response, sent, caller, logs, start, admin)
    acme.seen[response.status_code] += 1
    return response


# --- strategies -------------------------------------------------------------------------------

#: header-safe text: latin-1, no CR, LF or NUL (a server refuses those before any app)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=1, max_codepoint=255, blacklist_characters="\r\n"), max_size=60
)
ANY_TEXT = st.text(max_size=40)
LOGINS = st.sampled_from(["alice", "bob", "carol", "nobody", "", "alice\r\nforged", "a" * 300])


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def basic_headers(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["Basic", "basic", "BASIC", "Basic  ", "Basic\t"]))
    value = draw(
        st.one_of(
            HEADER_TEXT,  # not base64
            st.binary(max_size=40).map(_b64),  # base64 of anything
            st.tuples(LOGINS, ANY_TEXT).map(lambda p: _b64(f"{p[0]}:{p[1]}".encode())),
            st.tuples(LOGINS, ANY_TEXT).map(lambda p: _b64(f"{p[0]}{p[1]}".encode())),  # no colon
            st.sampled_from(["", "=", "==", "Og==", _b64(b":"), _b64(b"alice:"), _b64(b":pw")]),
            st.just(_b64(b"x" * 10_000 + b":" + b"y" * 10_000)),
        )
    )
    return f"{kind} {value}"


@st.composite
def tampered_tokens(draw: st.DrawFn, tokens: dict[str, str]) -> str:
    """A real token with one change that no valid token of ours can have."""
    token = tokens[draw(st.sampled_from(["alice", "bob", "carol", "refresh", "expired"]))]
    header, payload, signature = token.split(".")
    how = draw(
        st.sampled_from(
            [
                "flip",
                "alg none",
                "claims",
                "resign",
                "truncate",
                "extra segment",
                "refresh",
                "expired",
            ]
        )
    )
    if how == "refresh":
        return tokens["refresh"]  # a valid token, but never an access token
    if how == "expired":
        return tokens["expired"]
    if how == "flip":
        parts = [header, payload, signature]
        index = draw(st.integers(0, 2))
        raw = bytearray(base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4)))
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] ^= 1 << draw(st.integers(0, 7))
        parts[index] = _b64url(bytes(raw))
        return ".".join(parts)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if how == "alg none":
        none = _b64url(
            json.dumps({"alg": draw(st.sampled_from(["none", "None", "NONE"]))}).encode()
        )
        return f"{none}.{payload}." + draw(st.sampled_from(["", signature]))
    if how == "claims":
        claims["sub"] = draw(st.sampled_from(["alice", "bob", "carol", "policy_admin"]))
        claims["exp"] = draw(st.sampled_from([claims["exp"] + 3600, 10**12, "never", None]))
        return f"{header}.{_b64url(json.dumps(claims).encode())}.{signature}"
    if how == "resign":
        key = draw(st.sampled_from(["wrong-secret-of-at-least-32-bytes-long!!", JWT_SECRET[:-1]]))
        algorithm = draw(st.sampled_from(["HS256", "HS384", "HS512"]))
        forged = jwt.encode(
            claims, key if algorithm == "HS256" else JWT_SECRET, algorithm=algorithm
        )
        return forged
    if how == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    return token + "." + signature


@st.composite
def bearer_headers(draw: st.DrawFn, tokens: dict[str, str]) -> str:
    kind = draw(st.sampled_from(["Bearer", "bearer", "BEARER", "Bearer  "]))
    value = draw(
        st.one_of(
            HEADER_TEXT,
            st.lists(st.text("abcXYZ019-_", max_size=30), min_size=1, max_size=5).map(".".join),
            tampered_tokens(tokens),
            st.just("e" * 9000),
        )
    )
    return f"{kind} {value}"


#: headers that must never authenticate anyone: acme enables neither apikey nor remote_user
#: nor fake, and Werkzeug honours no URL-rewrite header
SPOOFING_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "X-API-Key",
            "X-Api-Key",
            "X-Remote-User",
            "Remote-User",
            "X-Forwarded-User",
            "X-Fake-User",
            "X-User",
            "X-Forwarded-For",
            "X-Real-IP",
            "X-Original-URL",
            "X-Rewrite-URL",
            "X-CSRF-Token",
            "X-HTTP-Method-Override",
        ]
    ),
    st.one_of(HEADER_TEXT, st.sampled_from(["alice", "policy_admin", "/guard/policies", "GET"])),
    max_size=4,
)


# --- credentials ------------------------------------------------------------------------------


def test_invalid_credentials_never_authenticate(acme: Acme, logs: pytest.LogCaptureFixture) -> None:
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=250)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        route = data.draw(st.sampled_from(acme.routes), label="route")
        authorization = data.draw(
            st.one_of(basic_headers(), bearer_headers(acme.tokens), HEADER_TEXT), label="auth"
        )
        spoofing = data.draw(SPOOFING_HEADERS, label="headers")
        headers = {**spoofing, "Authorization": authorization}
        response = send(acme, logs, route, "anonymous", headers=headers)
        declaration = route.guarded.declaration
        if declaration.close:
            assert response.status_code == 403
        elif not route.is_open:
            assert response.status_code in (401, 429), response.get_data(as_text=True)

    fuzz()
    assert seen[401] and seen[403]  # refused, and CLOSEd (429 may come too)


def test_real_passwords_in_credentials_stay_secret(
    acme_unlimited: Acme, logs: pytest.LogCaptureFixture
) -> None:
    """Right and wrong real passwords, by Basic and login bodies: nothing echoes or logs them."""
    acme = acme_unlimited
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=40)  # each example costs an argon2 verification (~40 ms)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        login = data.draw(st.sampled_from(sorted(PASSWORDS)), label="login")
        password = PASSWORDS[data.draw(st.sampled_from(sorted(PASSWORDS)), label="password of")]
        route = data.draw(st.sampled_from(acme.routes), label="route")
        if data.draw(st.booleans(), label="as Basic"):
            basic = _b64(f"{login}:{password}".encode())
            send(
                acme,
                logs,
                route,
                "anonymous",
                headers={"Authorization": f"Basic {basic}"},
                admin=True,
            )
        else:
            body = json.dumps({"login": login, "password": password}).encode()
            send(acme, logs, route, "anonymous", data=body, content_type="application/json")

    fuzz()
    assert seen[200] and seen[401]  # right and wrong passwords both checked


def test_garbage_and_resigned_session_cookies(acme: Acme, logs: pytest.LogCaptureFixture) -> None:
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=120)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        route = data.draw(st.sampled_from(acme.routes), label="route")
        signer = acme.app.session_interface.get_signing_serializer(acme.app)  # type: ignore[attr-defined]
        assert signer is not None
        garbage = st.one_of(
            HEADER_TEXT.map(lambda text: text.replace(";", "").replace(",", "")),
            st.binary(max_size=60).map(_b64url),
            st.text("abcdefXYZ0123456789-_.", max_size=120),
        )
        # Signed with the app's key: what a leaked key or an older release's session could carry.
        values = st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**80), 2**80),
            st.floats(),
            ANY_TEXT,
            st.lists(st.integers(), max_size=3),
        )
        forged = st.fixed_dictionaries(
            {
                "login": st.one_of(LOGINS, values),
                "sid": st.one_of(ANY_TEXT, values),
                "csrf": st.one_of(ANY_TEXT, values),
                "iat": st.one_of(values, st.floats(0, 2e9), st.sampled_from(EXTREME_TIMES)),
            }
        ).map(lambda fields: signer.dumps({"_casbin_guard": fields}))
        resigned = data.draw(st.booleans(), label="re-signed")
        value = data.draw(forged if resigned else garbage, label="cookie")
        csrf = data.draw(st.one_of(st.none(), HEADER_TEXT), label="csrf")
        headers = {"Cookie": f"session={value}"} | (
            {"X-CSRF-Token": csrf} if csrf is not None else {}
        )
        response = send(acme, logs, route, "anonymous", headers=headers, admin=resigned)
        if not resigned and not route.is_open and not route.guarded.declaration.close:
            assert response.status_code == 401

    fuzz()
    assert seen[401] and seen[200]


#: times a signed session could carry that are no time at all
EXTREME_TIMES = [10**400, -(10**400), math.inf, -math.inf, math.nan, 2.0**64, -1.0, True]


@pytest.mark.parametrize("iat", EXTREME_TIMES, ids=lambda value: repr(value)[:12])
def test_resigned_session_with_an_impossible_time_is_refused(
    acme: Acme, logs: pytest.LogCaptureFixture, iat: Any
) -> None:
    """Regression: a huge int was a 500 (OverflowError), NaN or infinity never expired.

    Only the app's key can sign a session, so this is about a leaked key or data written by
    another release: still a 401, never a 500 nor an everlasting session.
    """
    signer = acme.app.session_interface.get_signing_serializer(acme.app)  # type: ignore[attr-defined]
    whoami = next(r for r in acme.routes if r.rule == "/whoami")
    fields = {"login": "carol", "sid": "s", "csrf": "c"}
    for when, status in ((iat, 401), (time.time(), 200)):
        cookie = signer.dumps({"_casbin_guard": {**fields, "iat": when}})
        response = send(acme, logs, whoami, "anonymous", headers={"Cookie": f"session={cookie}"})
        assert response.status_code == status, when


def test_session_requests_without_the_csrf_token(
    acme: Acme, logs: pytest.LogCaptureFixture
) -> None:
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=60)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        unsafe = [r for r in acme.routes if r.method != "GET" and not r.is_open]
        route = data.draw(st.sampled_from(unsafe), label="route")
        csrf = data.draw(HEADER_TEXT, label="csrf")
        override = data.draw(st.sampled_from(["", "GET", "HEAD", "OPTIONS"]), label="override")
        headers = {"X-CSRF-Token": csrf} if csrf else {}
        headers |= {"X-HTTP-Method-Override": override} if override else {}
        query = f"_method={override}" if override else ""
        response = send(acme, logs, route, "bob-cookie", headers=headers, query=query)
        assert response.status_code == 403  # CSRF (or a CLOSEd route), never a 2xx or a parse

    fuzz()
    assert set(seen) == {403}


# --- query strings, bodies and path values ----------------------------------------------------

CALLERS = st.sampled_from(["alice", "bob", "carol", "anonymous", "bob-cookie"])

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**200), 2**200),
    st.floats(),  # NaN and infinities included: Python's json writes and reads them
    st.text(max_size=20),
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "kiwi", "alice", "store:1", "../x"]),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def bodies(draw: st.DrawFn, route: Route) -> tuple[bytes, str | None]:
    """Raw body and content type: JSON objects on the view's own keys, or worse."""
    keys = st.one_of(st.sampled_from(route.keys or ["x"]), st.text(max_size=8))
    kind = draw(st.sampled_from(["object", "object", "any", "deep", "huge", "raw", "form"]))
    if kind == "object":
        document = draw(st.dictionaries(keys, JSON, max_size=5))
        return json.dumps(document).encode(), "application/json"
    if kind == "any":
        return json.dumps(draw(JSON)).encode(), "application/json"
    if kind == "deep":
        depth = draw(st.sampled_from([50, 500, 990, 1_000, 5_000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + ("1" if opener != "[" else "") + closer * depth
        key = draw(st.sampled_from(route.keys or ["x"]))
        wrapped = draw(st.booleans())
        text = json.dumps({key: 0}).replace("0", inner) if wrapped else inner
        return text.encode(), "application/json"
    if kind == "huge":
        key = draw(st.sampled_from(route.keys or ["x"]))
        value = draw(st.sampled_from(["9" * 5_000, "1" + "0" * 400, '"' + "x" * 200_000 + '"']))
        return f'{{"{key}": {value}}}'.encode(), "application/json"
    if kind == "form":
        pairs = draw(st.lists(st.tuples(keys, st.text(max_size=20)), max_size=5))
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    content_type = draw(
        st.sampled_from(
            ["application/json", "application/json; charset=latin-1", "text/plain", None]
        )
    )
    return draw(st.binary(max_size=80)), content_type


def test_any_body(acme: Acme, logs: pytest.LogCaptureFixture) -> None:
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=200)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        route = data.draw(
            st.sampled_from([r for r in acme.routes if r.method != "GET"]), label="route"
        )
        caller = data.draw(CALLERS, label="caller")
        body, content_type = data.draw(bodies(route), label="body")
        response = send(acme, logs, route, caller, data=body, content_type=content_type)
        if caller == "anonymous" and not route.is_open and not route.guarded.declaration.close:
            assert response.status_code == 401  # checked before any parsing

    fuzz()
    assert seen[200] and seen[400] and seen[401] and seen[403]


def test_any_query_string(acme: Acme, logs: pytest.LogCaptureFixture) -> None:
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=150)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        route = data.draw(st.sampled_from(acme.routes), label="route")
        caller = data.draw(CALLERS, label="caller")
        keys = st.one_of(
            st.sampled_from([*route.keys, "_method", "sid", "user"]), st.text(max_size=8)
        )
        values = st.one_of(
            st.text(max_size=30),
            JSON.map(json.dumps),
            st.sampled_from(["[" * 5_000 + "]" * 5_000, "2", "store:2", "9" * 5000]),
        )
        pairs = data.draw(st.lists(st.tuples(keys, values), max_size=6), label="query")
        body = BODIES_OK.get(route.rule)
        send(
            acme,
            logs,
            route,
            caller,
            query=urlencode(pairs),
            data=json.dumps(body).encode() if body else None,
            content_type="application/json" if body else None,
        )

    fuzz()
    assert seen[200] and seen[400] and seen[401] and seen[403]


#: a valid body for the store routes, so the query string is what varies
BODIES_OK = {
    "/store/<sid>": {"product": "kiwi", "quantity": 1},
    "/store/<sid>/stock": {"lines": [{"product": "kiwi", "quantity": 1}]},
}
_INT = re.compile(r"[+-]?[0-9]{1,64}")


def test_any_path_value(acme: Acme, logs: pytest.LogCaptureFixture) -> None:
    seen = acme.seen
    seen.clear()

    @settings(FUZZ, max_examples=200)
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        routes = [
            r for r in acme.routes if "<" in r.rule or r.rule.startswith(("/auth/", "/guard/"))
        ]
        route = data.draw(st.sampled_from(routes), label="route")
        caller = data.draw(CALLERS, label="caller")
        value = data.draw(
            st.one_of(
                st.text(max_size=30),
                st.sampled_from(
                    ["2", "02", "+2", "2\n", "2 ", "\uff11", "\u0662", "..", "%2e%2e", "2;x=1"]
                ),
                st.integers(-(10**30), 10**30).map(str),
            ),
            label="value",
        )
        quoted = quote(value, safe=data.draw(st.sampled_from(["", "/", ";:@+"]), label="safe"))
        if "<" in route.rule:
            path = re.sub(r"<[^>]+>", lambda _: quoted, route.rule)
        else:
            path = route.path + "/" + quoted
        body = BODIES_OK.get(route.rule)
        response = send(
            acme,
            logs,
            route,
            caller,
            path=path,
            data=json.dumps(body).encode() if body else None,
            content_type="application/json" if body else None,
        )
        if route.rule.startswith("/store/<sid>") and 200 <= response.status_code < 300:
            # Object permissions hold on the converted value: bob manages store 2 only.
            assert caller in ("alice", "bob", "bob-cookie")
            assert _INT.fullmatch(value), value
            assert int(value) == {"alice": 1, "bob": 2, "bob-cookie": 2}[caller]

    fuzz()
    assert seen[200] and seen[400] and seen[403] and seen[404]


def test_deeply_nested_json_is_a_400_not_a_500(acme: Acme, logs: pytest.LogCaptureFixture) -> None:
    """Regression: a JSON body or query value nested deeper than the parser goes was a 500."""
    store = next(r for r in acme.routes if r.rule == "/store/<sid>" and r.method == "POST")
    stock = next(r for r in acme.routes if r.rule == "/store/<sid>/stock")
    deep = "[" * 100_000 + "]" * 100_000
    for route, caller in ((store, "alice"), (stock, "alice"), (store, "bob")):
        response = send(
            acme, logs, route, caller, data=deep.encode(), content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json["details"][0]["param"] == "body"
    response = send(acme, logs, stock, "alice", query=urlencode({"lines": deep}))
    assert response.status_code == 400
    assert response.json["details"][0]["param"].startswith("lines")


def test_deeply_nested_json_to_the_param_scheme_is_not_credentials() -> None:
    """Regression: the ``param`` scheme read such a body with get_json(silent=True): a 500."""
    app = Flask("param")
    app.config.update(TESTING=True, GUARD_AUTH=["param"], GUARD_GET_USER_PASS={}.get)

    @app.post("/login", authorize="AUTH")
    def login() -> str:
        return "never"  # pragma: no cover

    deep = "[" * 100_000 + "]" * 100_000
    response = app.test_client().post("/login", data=deep, content_type="application/json")
    assert response.status_code == 401
