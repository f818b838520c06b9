"""Hostile request targets and methods: a variant of a request never gets more than the request.

For every guarded route of the acme example (read from ``app.url_map``, so a new route is covered
without editing this file), as allowed and as denied callers, each variant of the canonical
request is either routed to the same view with the same decision, or refused by routing (308,
400, 404, 405); never a 2xx where the canonical request is denied, never a view that runs where
the canonical request's view does not (flask_security.md §6.1 items 28-33, §3c). The variants:
trailing and doubled slashes, percent-encoded letters and slashes, dot segments, case, ``;params``,
encoded CR/LF/NUL/space, absolute-form targets, method-override headers and ``_method`` fields,
HEAD and OPTIONS, leading zeros, signs and lookalike characters, and the path parameter repeated in
the query string or the body. They go through the Flask test client (with the WSGI environ a
server would build from the raw target), then byte for byte through a real gunicorn, and finally
against a deny-override model whose ``ROUTE`` declarations are decided on the rule template.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from examples.acme.app import create_app
from flask import request
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from flask_casbin_guard import Flask
from flask_casbin_guard.pipeline import route_of
from helpers import bearer, wait_until

ROOT = Path(__file__).parents[2]

#: acme's demo callers: alice manages store 1 (and is policy admin), bob manages store 2,
#: carol is an auditor (ROUTE GET /reports); "bob-cookie" is bob by session cookie, without the
#: CSRF token (so every unsafe request of his is denied, whatever the method override says).
TOKEN_USERS = ("alice", "bob", "carol")
USERS = (*TOKEN_USERS, "anonymous", "bob-cookie")

#: values for path variables, and for each one another value the parameter-pollution variants
#: try to smuggle in (the store the caller might manage, another login)
SAMPLES = {"sid": ("1", "2"), "user": ("alice",)}
POLLUTION = {"1": "2", "2": "1", "alice": "bob"}

#: a valid body per endpoint, so allowed callers get a 2xx (harmless policy changes only)
BODIES: dict[str, Any] = {
    "post_store_sid": {"product": "kiwi", "quantity": 1},
    "put_stock": {"lines": [{"product": "kiwi", "quantity": 1}]},
    "guard_admin.add_policy": {"ptype": "p", "values": ["ghost_role", "/ghost", "GET"]},
    "guard_admin.remove_policy": {"ptype": "p", "values": ["ghost_role", "/nowhere", "GET"]},
    "guard_admin.add_role": {"user": "zed", "role": "ghost_role"},
    "guard_admin.remove_role": {"user": "nobody", "role": "ghost_role"},
    "guard_admin.check": {"sub": "bob", "obj": "store:2", "act": "manager"},
}

#: statuses with which routing (or the server) refuses a request before any view
REFUSED_BY_ROUTING = frozenset({308, 400, 404, 405})
OVERRIDE_HEADERS = ("X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method")
OVERRIDE_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

#: lookalikes, percent-encoded UTF-8: long s, Cyrillic dze, fullwidth s; Cyrillic a, e, o, i;
#: Kelvin sign for k; and fullwidth, Arabic-Indic and superscript digits
LOOKALIKES = {
    "s": ("%C5%BF", "%D1%95", "%EF%BD%93"),
    "a": ("%D0%B0",),
    "e": ("%D0%B5",),
    "o": ("%D0%BE",),
    "i": ("%D1%96",),
    "k": ("%E2%84%AA",),
}
DIGITS = {"1": ("%EF%BC%91", "%D9%A1", "%C2%B9"), "2": ("%EF%BC%92", "%D9%A2", "%C2%B2")}


# --- requests, outcomes and the checker ------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request: the target exactly as a client would send it on the request line."""

    method: str
    #: origin-form (``/store/1?x=1``, percent-encoded as sent) or absolute-form
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    form: dict[str, str] | None = None

    def body(self) -> tuple[bytes, str | None]:
        if self.form is not None:
            text = "&".join(f"{key}={value}" for key, value in self.form.items())
            return text.encode(), "application/x-www-form-urlencoded"
        if self.json is not None:
            return json.dumps(self.json).encode(), "application/json"
        return b"", None


@dataclass(frozen=True)
class Outcome:
    status: int
    body: bytes = b""
    #: the matched rule's endpoint (``None``: routing refused it); unknown over a socket
    endpoint: str | None = None
    #: whether the view function itself ran (behind the guard); unknown over a socket
    view_ran: bool | None = None


@dataclass
class Checker:
    """Compares each variant's outcome with its canonical request's and collects violations.

    :param route_level: endpoints whose declaration is decided before parameters are parsed
        (no object permission), so a 400 after a denial there means parameters were parsed
        for a caller the route refuses.
    """

    route_level: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)
    compared: int = 0

    def check(
        self,
        who: str,
        canonical: Probe,
        before: Outcome,
        label: str,
        variant: Probe,
        after: Outcome,
    ) -> None:
        self.compared += 1
        problem = self.verdict(canonical, before, variant, after)
        if problem is not None:
            self.problems.append(
                f"{who}: {canonical.method} {canonical.target} -> {before.status}; "
                f"variant [{label}] {variant.method} {variant.target!r} "
                f"{dict(variant.headers) or ''} -> {after.status}: {problem}"
            )

    def verdict(
        self, canonical: Probe, before: Outcome, variant: Probe, after: Outcome
    ) -> str | None:
        """``None`` when ``after`` is acceptable for a variant of ``canonical``, else why not."""
        if after.status >= 500:
            return "server error"
        if 200 <= after.status < 300 and not 200 <= before.status < 300:
            automatic_options = (
                variant.method == "OPTIONS" and not after.view_ran and after.body == b""
            )
            if not automatic_options:
                return "BYPASS: a 2xx where the canonical request is refused"
        if after.view_ran and before.view_ran is False:
            return "BYPASS: the view ran where the canonical request's view does not"
        same_view = after.endpoint is not None and after.endpoint == before.endpoint
        if (
            same_view
            and after.status == 400
            and (
                before.status == 401
                or (before.status == 403 and after.endpoint in self.route_level)
            )
        ):
            return "parameters were parsed for a caller the route refuses"
        if after.status in REFUSED_BY_ROUTING and not after.view_ran:
            return None
        if variant.method == "OPTIONS" and canonical.method != "OPTIONS":
            return None  # automatic OPTIONS (checked above): no decision to compare
        if _decision(after) != _decision(before):
            return f"decision {_decision(after)} differs from the canonical {_decision(before)}"
        return None


def _decision(outcome: Outcome) -> str:
    return {401: "unauthenticated", 403: "forbidden"}.get(outcome.status, "passed")


# --- variants ---------------------------------------------------------------------------------


def _enc(char: str, upper: bool = True) -> str:
    return f"%{ord(char):02X}" if upper else f"%{ord(char):02x}"


def _join_at(segments: list[str], index: int, separator: str) -> str:
    """``/a/b/c`` with the separator before ``segments[index]`` replaced."""
    return "/" + "/".join(segments[:index]) + separator + "/".join(segments[index:])


def path_variants(path: str, variables: dict[str, str]) -> list[tuple[str, str]]:
    """Request targets naming ``path`` differently (ASCII, percent-encoded as on the wire)."""
    segments = path.strip("/").split("/") if path != "/" else []
    found: list[tuple[str, str]] = [
        ("trailing slash", path.rstrip("/") + "/"),
        ("trailing //", path.rstrip("/") + "//"),
        ("leading //", "/" + path),
        ("leading ///", "//" + path),
        ("leading %2F", "/%2F" + path.lstrip("/")),
        ("trailing %2F", path + "%2F"),
        ("trailing %2f", path + "%2f"),
        ("/./ prefix", "/." + path),
        ("/x/../ prefix", "/x/.." + path),
        ("encoded /x/%2e%2e/ prefix", "/x/%2e%2e" + path),
        ("encoded /%2E/ prefix", "/%2E" + path),
        ("trailing /.", path.rstrip("/") + "/."),
        ("upper case", path.upper()),
        ("swapped case", path.swapcase()),
        ("trailing ;params", path + ";x=2"),
        ("trailing ;", path + ";"),
        ("trailing %0a", path + "%0a"),
        ("trailing %0A", path + "%0A"),
        ("trailing %0d%0a", path + "%0d%0a"),
        ("trailing %0d", path + "%0d"),
        ("trailing %00", path + "%00"),
        ("trailing %09", path + "%09"),
        ("trailing %20", path + "%20"),
        ("trailing ?", path + "?"),
        ("absolute-form evil host", "http://evil.example" + path),
        ("absolute-form localhost", "http://localhost" + path),
        ("fully encoded", "".join(c if c == "/" else _enc(c) for c in path)),
    ]
    for index in range(1, len(segments)):
        found += [
            (f"inner // before segment {index}", _join_at(segments, index, "//")),
            (f"inner %2F before segment {index}", _join_at(segments, index, "%2F")),
            (f"inner %2f before segment {index}", _join_at(segments, index, "%2f")),
            (f"inner /./ before segment {index}", _join_at(segments, index, "/./")),
            (f"inner /x/../ before segment {index}", _join_at(segments, index, "/x/../")),
            (f"inner %0a before segment {index}", _join_at(segments, index, "%0a/")),
            (f"inner %0d%0a before segment {index}", _join_at(segments, index, "%0d%0a/")),
            (f"inner ;params before segment {index}", _join_at(segments, index, ";x=2/")),
        ]
    if segments:
        found.append(("last segment back through ..", f"{path}/../{segments[-1]}"))
        letter = next((i for i, c in enumerate(path) if c.isalpha()), None)
        if letter is not None:
            char = path[letter]
            for label, encoded in (("lower-hex", _enc(char, False)), ("upper-hex", _enc(char))):
                found.append(
                    (f"{label} encoded {char!r}", path[:letter] + encoded + path[letter + 1 :])
                )
            found.append(("first letter upper", path[:letter] + char.upper() + path[letter + 1 :]))
        for char, options in LOOKALIKES.items():
            at = path.find(char)
            for encoded in options if at >= 0 else ():
                found.append(
                    (f"lookalike {encoded} for {char!r}", path[:at] + encoded + path[at + 1 :])
                )
    for name, value in variables.items():
        at = path.rfind("/" + value)
        if at < 0:
            continue
        head, tail = path[: at + 1], path[at + 1 + len(value) :]
        spelled = [
            ("leading zero", "0" + value),
            ("leading zeros", "00" + value),
            ("plus sign", "+" + value),
            ("encoded plus sign", "%2B" + value),
            ("decimal", value + ".0"),
            ("exponent", value + "e0"),
            ("underscore", value + "_0"),
            ("leading space", "%20" + value),
            ("trailing newline", value + "%0a"),
            ("encoded value", "".join(_enc(c) for c in value)),
            *[(f"unicode digits {d}", d) for d in DIGITS.get(value, ())],
        ]
        found += [(f"{name}: {label}", head + text + tail) for label, text in spelled]
    return found


def variants(probe: Probe, variables: dict[str, str], path: str) -> Iterator[tuple[str, Probe]]:
    """Every variant of ``probe``: targets, method overrides, HEAD/OPTIONS, parameter pollution."""
    for label, target in path_variants(path, variables):
        yield label, replace(probe, target=target)
    for method in OVERRIDE_METHODS:
        if method == probe.method:
            continue
        for header in OVERRIDE_HEADERS:
            yield f"{header}: {method}", replace(probe, headers=(*probe.headers, (header, method)))
        yield f"?_method={method}", replace(probe, target=f"{path}?_method={method}")
        if isinstance(probe.json, dict) and all(
            isinstance(v, str | int) for v in probe.json.values()
        ):
            form = {key: str(value) for key, value in probe.json.items()} | {"_method": method}
            yield f"form _method={method}", replace(probe, json=None, form=form)
        else:
            body = probe.json if isinstance(probe.json, dict) else {}
            yield f"JSON _method={method}", replace(probe, json={**body, "_method": method})
    if probe.method == "GET":
        yield "HEAD", replace(probe, method="HEAD")
    yield "OPTIONS", replace(probe, method="OPTIONS", json=None)
    for name, value in variables.items():
        other = POLLUTION.get(value, value + "0")
        yield f"?{name}={other}", replace(probe, target=f"{path}?{name}={other}")
        if isinstance(probe.json, dict):
            yield f"JSON {name}={other}", replace(probe, json={**probe.json, name: other})


def canonical_probes(app: Flask, rule: Rule) -> Iterator[tuple[Probe, dict[str, str], str]]:
    """(probe, path variables, path) for each method and sample of a rule."""
    adapter = app.url_map.bind("localhost")
    names = sorted(rule.arguments)
    combos: list[dict[str, str]] = [{}]
    for name in names:
        combos = [{**c, name: v} for c in combos for v in SAMPLES.get(name, ("1",))]
    for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
        for values in combos:
            path = adapter.build(rule.endpoint, values, method=method)
            body = BODIES.get(rule.endpoint)
            yield Probe(method, path, json=body), values, path


def guarded_rules(app: Flask) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    assert all(route_of(app.view_functions[r.endpoint]) is not None for r in rules)
    return rules


# --- sending ----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Which endpoint a request matched and whether the view itself ran (test client only)."""

    endpoint: str | None = None
    view_ran: bool = False

    def install(self, app: Flask) -> None:
        for function in app.view_functions.values():
            route = route_of(function)
            if route is not None:
                # The guard calls route.view only after every check passed: wrap that call.
                object.__setattr__(route, "view", self._wrap(route.view))

        @app.after_request
        def remember(response: Any) -> Any:
            self.endpoint = request.url_rule.endpoint if request.url_rule else None
            return response

    def _wrap(self, view: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.view_ran = True
            return view(*args, **kwargs)

        return recorded


def send_wsgi(
    client: FlaskClient, recorder: Recorder, probe: Probe, headers: dict[str, str]
) -> Outcome:
    """Send ``probe`` through the test client with the environ a server builds from the target.

    The test client would parse ``//store`` as a host and normalize other targets: instead,
    ``PATH_INFO`` is the percent-decoded target as latin-1 text, as gunicorn and Werkzeug's
    server give it, and ``REQUEST_URI``/``RAW_URI`` keep the target as sent.
    """
    recorder.endpoint, recorder.view_ran = None, False
    body, content_type = probe.body()
    all_headers = {**headers, **dict(probe.headers)}
    if content_type:
        all_headers["Content-Type"] = content_type
    if probe.target.startswith("http://"):
        response = client.open(probe.target, method=probe.method, headers=all_headers, data=body)
    else:
        path, _, query = probe.target.partition("?")
        environ = {
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": probe.target,
            "RAW_URI": probe.target,
        }
        response = client.open(
            "/", method=probe.method, headers=all_headers, data=body, environ_overrides=environ
        )
    return Outcome(response.status_code, response.get_data(), recorder.endpoint, recorder.view_ran)


# --- the acme app through the test client ----------------------------------------------------


@pytest.fixture(scope="module")
def acme(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Flask, Recorder, dict[str, dict[str, str]]]:
    """The acme app on its own policy database, a recorder, and each caller's headers."""
    db = tmp_path_factory.mktemp("acme") / "acme.db"
    app = create_app({"TESTING": True, "GUARD_POLICY": f"sqlite:///{db}"})
    recorder = Recorder()
    recorder.install(app)
    with app.app_context():
        headers = {user: bearer(app.guard.create_token(user)) for user in TOKEN_USERS}
    login = app.test_client().post("/auth/login", json={"login": "bob", "password": "bob-pass"})
    assert login.status_code == 200
    cookie = login.headers["Set-Cookie"].split(";", 1)[0]
    headers |= {"anonymous": {}, "bob-cookie": {"Cookie": cookie}}
    return app, recorder, headers


def sweep(
    app: Flask,
    send: Callable[[Probe, dict[str, str]], Outcome],
    users: dict[str, dict[str, str]],
    checker: Checker,
) -> dict[tuple[str, str, str], Outcome]:
    """Every guarded route, caller and variant; returns the canonical outcomes."""
    canonical: dict[tuple[str, str, str], Outcome] = {}
    for rule in guarded_rules(app):
        for probe, values, path in canonical_probes(app, rule):
            for who, headers in users.items():
                before = send(probe, headers)
                canonical[(who, probe.method, probe.target)] = before
                for label, variant in variants(probe, values, path):
                    checker.check(who, probe, before, label, variant, send(variant, headers))
    return canonical


def route_level_endpoints(app: Flask) -> frozenset[str]:
    return frozenset(
        endpoint
        for endpoint, function in app.view_functions.items()
        if (route := route_of(function)) is not None and not route.declaration.objects
    )


@pytest.mark.parametrize("user", USERS)
def test_no_variant_of_any_acme_request_gets_more(
    acme: tuple[Flask, Recorder, dict[str, dict[str, str]]], user: str
) -> None:
    app, recorder, headers = acme
    client = app.test_client(use_cookies=False)
    checker = Checker(route_level_endpoints(app))
    outcomes = sweep(
        app, lambda probe, h: send_wsgi(client, recorder, probe, h), {user: headers[user]}, checker
    )
    assert not checker.problems, "\n".join(checker.problems[:40])
    statuses = {key: outcome.status for key, outcome in outcomes.items()}
    # The recorder sees views run for allowed requests only (or the checker would be blind).
    ran = {key[1:] for key, outcome in outcomes.items() if outcome.view_ran}
    assert (("GET", "/") in ran) and (("GET", "/whoami") in ran) == (user != "anonymous")
    # Every route was covered, with enough variants each.
    assert len({target for _, _, target in statuses}) >= len(guarded_rules(app)) - 2
    assert checker.compared >= 60 * len(statuses)
    expected = {
        "alice": {("POST", "/store/1"): 200, ("POST", "/store/2"): 403, ("GET", "/reports"): 403},
        "bob": {
            ("POST", "/store/1"): 403,
            ("POST", "/store/2"): 200,
            ("GET", "/guard/policies"): 403,
        },
        "carol": {("GET", "/reports"): 200, ("GET", "/store"): 403, ("POST", "/store/1"): 403},
        "anonymous": {("GET", "/store"): 401, ("POST", "/store/1"): 401, ("GET", "/"): 200},
        "bob-cookie": {("GET", "/store"): 200, ("POST", "/store/2"): 403, ("GET", "/reports"): 403},
    }[user]
    for (method, target), status in expected.items():
        assert statuses[(user, method, target)] == status, (method, target)


def test_the_checker_reports_what_it_must() -> None:
    checker = Checker(frozenset({"reports"}))
    get = Probe("GET", "/reports")
    denied = Outcome(403, b"{}", "reports", False)
    allowed = Outcome(200, b"{}", "reports", True)
    assert checker.verdict(get, denied, get, Outcome(404)) is None
    assert checker.verdict(get, allowed, get, Outcome(308)) is None
    assert checker.verdict(get, denied, get, allowed) is not None
    assert checker.verdict(get, denied, get, Outcome(400, b"", "reports", False)) is not None
    assert checker.verdict(get, denied, get, Outcome(500)) is not None
    assert checker.verdict(get, Outcome(401), get, Outcome(204, b"", "x", None)) is not None
    options = replace(get, method="OPTIONS")
    assert checker.verdict(get, denied, options, Outcome(200, b"", "reports", False)) is None
    assert (
        checker.verdict(get, denied, options, Outcome(200, b"data", "reports", False)) is not None
    )
    assert checker.verdict(get, allowed, get, Outcome(403, b"", "reports", False)) is not None


# --- a deny-override model with ROUTE declarations --------------------------------------------

DENY_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && (r.act == p.act || p.act == "*")
"""

DENY_POLICY = """\
p, staff, /*, *, allow
p, staff, /admin, GET, deny
p, staff, /admin/users/:id, GET, deny
p, admins, /admin, GET, allow
p, admins, /admin/users/:id, GET, allow
g, bob, staff
g, alice, admins
"""


def deny_override_app(write_file: Callable[[str, str], str], vulnerable: bool = False) -> Flask:
    """§3c's demo: staff may do anything but GET /admin and GET /admin/users/:id.

    ``vulnerable`` adds what the guard must never do, as a positive control for the checker:
    a hook that decides on the raw ``PATH_INFO`` in front of OPEN views.
    """
    app = Flask("deny_override")
    app.config.update(
        TESTING=True,
        GUARD_AUTH=["bearer"],
        GUARD_JWT_SECRET="a-deny-override-secret-of-at-least-32-bytes",
        GUARD_MODEL=DENY_MODEL,
        GUARD_POLICY=write_file("deny.csv", DENY_POLICY),
    )
    spec = "OPEN" if vulnerable else "ROUTE"

    @app.route("/admin", methods=["GET", "POST"], authorize=spec)
    def admin() -> str:
        return "admin"

    @app.get("/admin/users/<int:uid>", authorize=spec)
    def admin_user(uid: int) -> dict[str, int]:
        return {"uid": uid}

    @app.get("/public", authorize=spec)
    def public() -> str:
        return "public"

    @app.get("/docs/", authorize=spec)
    def docs() -> str:
        return "docs"

    @app.get("/files/<path:name>", authorize=spec)
    def files(name: str) -> dict[str, str]:
        return {"name": name}

    if vulnerable:

        @app.before_request
        def raw_path_check() -> Any:
            login = app.guard.current_user
            path = request.environ["PATH_INFO"]
            method = "GET" if request.method == "HEAD" else request.method
            if login is None or not app.guard.enforce(login, path, method):
                return {"error": "forbidden"}, 403
            return None

    return app


def deny_users(app: Flask) -> dict[str, dict[str, str]]:
    with app.app_context():
        return {u: bearer(app.guard.create_token(u)) for u in ("alice", "bob")} | {"anonymous": {}}


def deny_sweep(app: Flask) -> tuple[Checker, dict[tuple[str, str, str], int]]:
    """The checker after a sweep of ``app`` as alice, bob and anonymous; canonical statuses."""
    recorder = Recorder()
    recorder.install(app)
    client = app.test_client(use_cookies=False)
    checker = Checker(route_level_endpoints(app))
    outcomes = sweep(
        app, lambda probe, h: send_wsgi(client, recorder, probe, h), deny_users(app), checker
    )
    return checker, {key: outcome.status for key, outcome in outcomes.items()}


def test_route_declarations_decide_on_the_rule_template(
    write_file: Callable[[str, str], str],
) -> None:
    app = deny_override_app(write_file)
    checker, statuses = deny_sweep(app)
    assert not checker.problems, "\n".join(checker.problems[:40])
    assert statuses[("bob", "GET", "/admin")] == 403
    assert statuses[("bob", "POST", "/admin")] == 200  # only GET is denied to staff
    assert statuses[("bob", "GET", "/admin/users/1")] == 403
    assert statuses[("bob", "GET", "/public")] == 200
    assert statuses[("alice", "GET", "/admin")] == 200
    assert statuses[("anonymous", "GET", "/admin")] == 401
    # The raw strings a path-based check would see are allowed by this policy...
    with app.app_context():
        for raw in ("/admin/", "//admin", "/ADMIN", "/x/../admin", "/admin/users/7/"):
            assert app.guard.enforce("bob", raw, "GET"), raw
    # ...yet the requests carrying them never reach the protected views.
    client = app.test_client()
    bob = deny_users(app)["bob"]
    for method, target in [
        ("HEAD", "/admin"),
        ("GET", "/admin/users/07"),
        ("GET", "/%61dmin"),
        ("GET", "/admin?x=/public"),
    ]:
        assert client.open(target, method=method, headers=bob).status_code == 403, target
    assert client.get("/files/..%2fadmin", headers=bob).json == {"name": "../admin"}


def test_the_checker_catches_a_decision_on_the_raw_path(
    write_file: Callable[[str, str], str],
) -> None:
    checker, statuses = deny_sweep(deny_override_app(write_file, vulnerable=True))
    assert statuses[("bob", "GET", "/admin")] == 403
    bypasses = [p for p in checker.problems if "BYPASS" in p and p.startswith("bob: GET /admin ")]
    assert any("[leading //]" in p for p in bypasses), checker.problems
    assert any("[leading %2F]" in p for p in bypasses), checker.problems


# --- byte for byte through gunicorn -----------------------------------------------------------

RAW_ONLY: list[tuple[str, bytes]] = [
    ("raw UTF-8 long s", "\u017f".encode()),
    ("raw UTF-8 Cyrillic a", "\u0430".encode()),
    ("raw latin-1 byte", b"\xe9"),
    ("fragment", b"#x"),
    ("backslash", b"\\"),
]


#: variants whose target only differs after percent-decoding, which the test client already
#: reproduces byte for byte (PATH_INFO): left out of the gunicorn part to keep it short
SAME_ON_EVERY_SERVER = ("lookalike", "sid: ", "user: ", "?", "upper-hex", "first letter")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_http(
    port: int, probe: Probe, headers: dict[str, str], target: bytes | None = None
) -> Outcome:
    """One request on its own connection, the request line exactly as given."""
    body, content_type = probe.body()
    lines = [b"%s %s HTTP/1.1" % (probe.method.encode(), target or probe.target.encode())]
    fields = {"Host": "127.0.0.1", "Connection": "close", **headers, **dict(probe.headers)}
    fields |= {"Content-Type": content_type} if content_type else {}
    fields["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}".encode("latin-1") for name, value in fields.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, data = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return Outcome(status, data)


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Flask, Path]]:
    """acme under gunicorn (2 workers) on a seeded SQLite policy; a local twin mints tokens."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    policy = f"sqlite:///{tmp / 'acme.db'}"
    secret = "canonicalization-jwt-secret-of-at-least-32-bytes"
    twin = create_app({"TESTING": True, "GUARD_POLICY": policy, "GUARD_JWT_SECRET": secret})
    assert twin.test_client().get("/store").status_code == 401  # seeds the database once
    env = {
        **os.environ,
        "ACME_POLICY": policy,
        "ACME_JWT_SECRET": secret,
        "ACME_SECRET_KEY": "canonicalization-session-key-0123456789abcdef",
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    log = tmp / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "2", "--timeout", "20",
        "--no-control-socket",  # else every gunicorn on the machine shares ~/.gunicorn/gunicorn.ctl
        "examples.acme.app:create_app()",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text()}")
        raw_http(port, Probe("GET", "/"), {})
        return True

    try:
        # Bounded far above the seconds it takes on a loaded 2-core machine.
        wait_until(answers, 60, lambda: f"gunicorn to answer:\n{log.read_text()}", step=0.1,
                   retry_on=(OSError,))  # fmt: skip
        yield port, twin, log
    finally:
        process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
        process.wait(60)


def test_raw_targets_through_gunicorn(gunicorn: tuple[int, Flask, Path]) -> None:
    port, twin, log = gunicorn
    with twin.app_context():
        users = {u: bearer(twin.guard.create_token(u)) for u in TOKEN_USERS} | {"anonymous": {}}
    canonical: dict[tuple[str, str, str], Outcome] = {}
    jobs: list[tuple[str, Probe, str, Probe, bytes | None]] = []
    for rule in guarded_rules(twin):
        for probe, values, path in canonical_probes(twin, rule):
            if any(v != SAMPLES.get(k, ("1",))[0] for k, v in values.items()):
                continue  # one sample per variable keeps this part to a few seconds
            # One caller per distinct canonical status (allowed, 401, 403) of this request.
            callers: dict[int, str] = {}
            for who in users:
                before = canonical[(who, probe.method, probe.target)] = raw_http(
                    port, probe, users[who]
                )
                callers.setdefault(before.status, who)
            for who in callers.values():
                for label, variant in variants(probe, values, path):
                    # Headers and bodies reach the app unchanged: the test client covers them.
                    if label.startswith(SAME_ON_EVERY_SERVER):
                        continue
                    if variant.target != probe.target or variant.method != probe.method:
                        jobs.append((who, probe, label, variant, None))
                for label, raw in RAW_ONLY:
                    jobs.append((who, probe, label, probe, path.encode() + raw))
                    if raw != b"#x":  # "/#x/store" is a request for "/"
                        jobs.append(
                            (who, probe, f"{label} inside", probe, b"/" + raw + path.encode())
                        )
                lower = replace(probe, method=probe.method.lower())
                jobs.append((who, probe, "lower-case method", lower, None))

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda job: raw_http(port, job[3], users[job[0]], job[4]), jobs))
    checker = Checker()
    for (who, probe, label, variant, raw), after in zip(jobs, outcomes, strict=True):
        shown = replace(variant, target=raw.decode("latin-1")) if raw is not None else variant
        before = canonical[(who, probe.method, probe.target)]
        checker.check(who, probe, before, label, shown, after)
    assert not checker.problems, "\n".join(checker.problems[:40])
    assert len(jobs) > 1000
    statuses = {key: outcome.status for key, outcome in canonical.items()}
    assert statuses[("alice", "POST", "/store/1")] == 200
    assert statuses[("bob", "POST", "/store/1")] == 403
    assert statuses[("carol", "GET", "/reports")] == 200
    assert statuses[("anonymous", "GET", "/reports")] == 401
    # What §3c observed under gunicorn: //x reaches the /x view, and is decided like /x.
    bob, body = users["bob"], BODIES["post_store_sid"]
    assert raw_http(port, Probe("POST", "//store/2", json=body), bob).status == 200
    assert raw_http(port, Probe("POST", "//store/1", json=body), bob).status == 403
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception" not in text, text[-3000:]
