"""HTTP decisions through guarded routes against pycasbin, on Casbin's own example models.

``test_engine_differential.py`` compares the engine with pycasbin's ``Enforcer``; this file
sends the same requests through the whole pipeline (authentication, tenant, declaration,
binding, object loader) and requires each answer to be pycasbin's: 200 for an allow, 403 for a
deny, 503 where pycasbin raises. Object permissions get the exact object (a loader returns the
value), ``ROUTE`` routes are registered at the policy's own paths with its HTTP methods, and role
declarations are compared with what ``g(user, role[, domain])`` is in pycasbin.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask

from conftest import CASBIN_EXAMPLES
from flask_casbin_guard import CasbinGuard
from flask_casbin_guard.authz.declarations import RESERVED
from flask_casbin_guard.authz.engine import model_arities, parse_model
from flask_casbin_guard.authz.objects import has_dot_segment
from flask_casbin_guard.identity import is_safe_login
from flask_casbin_guard.store.csv import read_policy_file
from test_engine_differential import (
    EXAMPLE_PAIRS,
    _expected,
    key_match_custom,
    reference,
    requests_for,
)

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
#: policy paths usable as a Flask rule as they are (no variables, no doubled slashes)
RULE = re.compile(r"/(?:[\w*.:-]+/?)*")
STATUS = {True: 200, False: 403, "error": 503}

#: models whose requests the pipeline can make: a subject, an object, an action (and a domain)
PAIRS = [
    (model, policy)
    for model, policies in EXAMPLE_PAIRS.items()
    for policy in policies
    if "without_resources" not in model and "without_users" not in model
]


def word(value: Any) -> bool:
    """Usable as a role or action in a declaration."""
    return isinstance(value, str) and is_safe_login(value) and value.upper() not in RESERVED


def build(text: str, policy: Path, domains: bool, actions: list[str], paths: dict[str, list[str]],
          roles: list[str], functions: dict[str, Any]) -> Flask:  # fmt: skip
    app = Flask("differential")
    app.config.update(
        TESTING=True,
        GUARD_AUTH=["fake"],
        GUARD_MODEL=text,
        GUARD_POLICY=str(policy),
        GUARD_DECISION_CACHE_SIZE=0,
        **({"GUARD_TENANT": "header:X-Tenant"} if domains else {}),
    )
    guard = CasbinGuard(app)
    for name, function in functions.items():
        guard.add_function(name, function)
    guard.object_loader("o")(lambda value: value)  # the exact object, no "o:" prefix

    def view(**_: Any) -> str:
        return "ok"

    for index, action in enumerate(actions):
        guarded = guard.authorize(("o", "value", action))(lambda value: "ok")
        app.add_url_rule(f"/o{index}", f"o{index}", guarded)
    for index, (path, methods) in enumerate(paths.items()):
        app.add_url_rule(path, f"r{index}", guard.authorize("ROUTE")(view), methods=methods)
    for index, role in enumerate(roles):
        app.add_url_rule(f"/role{index}", f"role{index}", guard.authorize(role)(view))
    return app


@pytest.mark.skipif(not CASBIN_EXAMPLES.is_dir(), reason=f"{CASBIN_EXAMPLES} is absent")
@pytest.mark.parametrize(
    ("model", "policy"),
    PAIRS,
    ids=lambda value: value.removesuffix(".conf").removesuffix(".csv"),
)
def test_http_decisions_equal_pycasbins(model: str, policy: str) -> None:
    text = (CASBIN_EXAMPLES / model).read_text(encoding="utf-8")
    parsed = parse_model(text, model)
    rows = read_policy_file(CASBIN_EXAMPLES / policy, model_arities(parsed))
    tokens = [t.removeprefix("r_") for t in parsed["r"]["r"].tokens]
    domains = len(tokens) == 4
    dom = (tokens.index("dom") if "dom" in tokens else 1) if domains else None
    obj, act = [i for i in range(len(tokens)) if i not in (0, dom)]
    # IP addresses as logins too, for ipMatch(r.sub, p.sub).
    extras = {tokens[0]: ["192.168.2.123", "10.0.0.1"]}
    combos = [c for c in requests_for(text, rows, extras, limit=3000) if word(c[0])]
    combos = [c for c in combos if dom is None or (word(c[dom]) and "::" not in c[dom])]
    combos = [c for c in combos if isinstance(c[obj], str) and c[obj] and word(c[act])]
    actions = sorted({c[act] for c in combos})
    paths: dict[str, list[str]] = {}
    for combo in combos:
        if RULE.fullmatch(combo[obj]) and combo[act] in METHODS and "//" not in combo[obj]:
            paths.setdefault(combo[obj], []).append(combo[act])
    paths = {path: sorted(set(methods)) for path, methods in paths.items()}
    roles = sorted(v for r in rows if r.ptype == "g" for v in r.values[1:2] if word(v))
    # Temporal role links live in pycasbin's conditional role manager: role routes not compared.
    roles = list(dict.fromkeys(roles)) if "temporal" not in model else []
    # keymatch_custom_model.conf calls the function Casbin's own tests register for it
    functions = {"keyMatchCustom": key_match_custom} if "custom" in model else {}
    app = build(text, CASBIN_EXAMPLES / policy, domains, actions, paths, roles, functions)
    enforcer = reference(text, rows, functions)
    # Its own enforcer: has_link may add the names it is asked about.
    links = reference(text, rows, functions).get_role_manager() if roles else None
    client = app.test_client()
    expected = {combo: STATUS[_expected(enforcer, combo)[0]] for combo in combos}
    # Every request pycasbin allows or fails on, and a sample of those it denies.
    denied = [combo for combo in combos if expected[combo] == 403]
    sample = [combo for combo in combos if expected[combo] != 403]
    sample += random.Random(model + policy).sample(denied, min(len(denied), 300))
    counts = {200: 0, 404: 0, 503: 0}

    def headers(combo: tuple[Any, ...]) -> dict[str, str]:
        found = {"X-Fake-User": combo[0]}
        return found | ({"X-Tenant": combo[dom]} if dom is not None else {})

    for combo in sample:
        # Refused before Casbin (test_object_values.py); none of the examples has such a value.
        wanted = 400 if has_dot_segment(combo[obj]) else expected[combo]
        # The object comes from a loader, so a denial answers as a missing object does.
        wanted = 404 if wanted == 403 else wanted
        index = actions.index(combo[act])
        got = client.get(f"/o{index}", query_string={"value": combo[obj]}, headers=headers(combo))
        assert got.status_code == wanted, ("object", combo, got.json)
        counts[got.status_code] = counts.get(got.status_code, 0) + 1
        if combo[obj] in paths and combo[act] in paths[combo[obj]]:
            got = client.open(combo[obj], method=combo[act], headers=headers(combo))
            assert got.status_code == expected[combo], ("ROUTE", combo)
    subjects = sorted({c[0] for c in combos})
    tenants = sorted({c[dom] for c in combos}) if dom is not None else [None]
    for index, role in enumerate(roles):
        for subject in subjects:
            for tenant in tenants:
                # A role declaration holds when pycasbin lists the role among the subject's
                # implicit roles: transitive, and never the subject itself.
                held = subject != role and cast(Any, links).has_link(
                    subject, role, *([tenant] if tenant is not None else [])
                )
                extra = {"X-Tenant": tenant} if tenant is not None else {}
                got = client.get(f"/role{index}", headers={"X-Fake-User": subject} | extra)
                assert got.status_code == STATUS[bool(held)], ("role", subject, role, tenant)
    assert counts[404] + counts[503] > 0, counts
