"""Multi-tenant models: the tenant resolver and route decisions in the request's domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from flask_casbin_guard import ConfigurationError, Flask, Identity
from flask_casbin_guard.authz.tenants import TenantResolver
from flask_casbin_guard.errors import AccessDenied, ParameterError
from helpers import DOMAIN_MODEL, basic, bearer

POLICY = """
g, alice, admin, acme
g, bob, admin, globex
g, carol, member, acme
p, admin, acme, report:1, read
p, admin, globex, report:1, read
"""
ALICE, BOB = basic("alice", "alice-password"), basic("bob", "bob-password")


def app_with(guard_config: dict[str, Any], tmp_path: Path, tenant: Any) -> Flask:
    policy = tmp_path / "policy.csv"
    policy.write_text(POLICY)
    app = Flask(__name__)
    app.config.update(
        guard_config, GUARD_MODEL=DOMAIN_MODEL, GUARD_POLICY=str(policy), GUARD_TENANT=tenant
    )

    @app.get("/t/<org>/admin", authorize="admin")
    def admin(org: str) -> dict[str, str]:
        return {"org": org}

    @app.get("/t/<org>/report/<int:rid>", authorize=("report", "rid", "read"))
    def report(org: str, rid: int) -> dict[str, Any]:
        return {"org": org, "rid": rid}

    return app


def test_tenant_from_the_path(guard_config: dict[str, Any], tmp_path: Path) -> None:
    client = app_with(guard_config, tmp_path, "path:org").test_client()
    assert client.get("/t/acme/admin", headers=ALICE).json == {"org": "acme"}
    # The same role name in another tenant grants nothing here.
    assert client.get("/t/globex/admin", headers=ALICE).status_code == 403
    assert client.get("/t/globex/admin", headers=BOB).status_code == 200
    assert client.get("/t/acme/report/1", headers=ALICE).json == {"org": "acme", "rid": 1}
    assert client.get("/t/acme/report/1", headers=BOB).status_code == 403
    assert client.get("/t/acme/admin", headers=basic("carol", "carol-password")).status_code == 403


def test_tenant_values_that_could_pass_for_another_are_refused(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    client = app_with(guard_config, tmp_path, "path:org").test_client()
    for org in ("acme::globex", "acme,globex", "%20acme"):
        assert client.get(f"/t/{org}/admin", headers=ALICE).status_code == 400


def test_tenant_from_a_header_or_a_claim(guard_config: dict[str, Any], tmp_path: Path) -> None:
    header = app_with(guard_config, tmp_path, "header:X-Tenant").test_client()
    assert header.get("/t/x/admin", headers={**ALICE, "X-Tenant": "acme"}).status_code == 200
    assert header.get("/t/x/admin", headers={**ALICE, "X-Tenant": "globex"}).status_code == 403
    missing = header.get("/t/x/admin", headers=ALICE)
    assert missing.status_code == 400 and missing.json["details"][0]["param"] == "X-Tenant"
    claim_app = app_with(guard_config, tmp_path, "claim:tenant")
    client = claim_app.test_client()
    with claim_app.app_context():
        good = claim_app.guard.create_token("alice", tenant="acme")
        other = claim_app.guard.create_token("alice", tenant="globex")
        none = claim_app.guard.create_token("alice")
    assert client.get("/t/x/admin", headers=bearer(good)).status_code == 200
    assert client.get("/t/x/admin", headers=bearer(other)).status_code == 403
    assert client.get("/t/x/admin", headers=bearer(none)).status_code == 403


def test_tenant_from_a_callable(guard_config: dict[str, Any], tmp_path: Path) -> None:
    def by_subdomain(request: Any, view_args: Any, identity: Identity | None) -> str | None:
        return request.host.split(".")[0] if "." in request.host else None

    client = app_with(guard_config, tmp_path, by_subdomain).test_client()
    assert (
        client.get("/t/x/admin", headers=ALICE, base_url="http://acme.example").status_code == 200
    )
    assert (
        client.get("/t/x/admin", headers=ALICE, base_url="http://globex.example").status_code == 403
    )
    assert client.get("/t/x/admin", headers=ALICE, base_url="http://localhost").status_code == 403


def test_domain_model_without_a_resolver_is_a_configuration_error(
    guard_config: dict[str, Any], tmp_path: Path
) -> None:
    client = app_with(guard_config, tmp_path, None).test_client()
    with pytest.raises(ConfigurationError, match="GUARD_TENANT"):
        client.get("/t/acme/admin", headers=ALICE)


@pytest.mark.parametrize("spec", ["path", "cookie:x", "header:", 42])
def test_bad_specs(spec: Any) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_TENANT"):
        TenantResolver(spec)


def test_resolver_errors() -> None:
    request = EnvironBuilder(headers=[("X-T", "a"), ("X-T", "b")]).get_request()
    with pytest.raises(ParameterError):
        TenantResolver("header:X-T").resolve(request, {}, None)  # two values: ambiguous
    with pytest.raises(AccessDenied):
        TenantResolver("claim:tenant").resolve(
            request, {}, Identity("a", "bearer", {"tenant": 7.5})
        )
    identity = Identity("a", "bearer", {"tenant": 12})
    assert TenantResolver("claim:tenant").resolve(request, {}, identity) == "12"


def test_cli_roles_and_checks_in_a_domain(guard_config: dict[str, Any], tmp_path: Path) -> None:
    app = app_with(guard_config, tmp_path, "path:org")
    runner = app.test_cli_runner()
    assert (
        runner.invoke(args=["guard", "role", "add", "dave", "admin", "--domain", "acme"]).output
        == "added\n"
    )
    assert (
        runner.invoke(args=["guard", "role", "list", "dave", "--domain", "acme"]).output
        == "admin\n"
    )
    assert runner.invoke(args=["guard", "role", "list", "dave", "--domain", "globex"]).output == ""
    check = runner.invoke(args=["guard", "check", "dave", "report:1", "read", "--domain", "acme"])
    assert check.exit_code == 0
    assert (
        runner.invoke(
            args=["guard", "check", "dave", "report:1", "read", "--domain", "globex"]
        ).exit_code
        == 3
    )
    no_domain = runner.invoke(args=["guard", "role", "add", "x", "y"])
    assert no_domain.exit_code == 1 and "a domain" in no_domain.output
