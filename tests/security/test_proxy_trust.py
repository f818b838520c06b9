"""Trusted-proxy identity is decided on the peer that connected, behind ProxyFix too (issue 23.5).

The attack: an app that wraps itself in Werkzeug's ``ProxyFix`` (as its docs recommend behind a
load balancer) and enables the ``remote_user`` scheme. A client that reaches the app directly
writes ``X-Forwarded-For: <the trusted proxy>`` and ``X-Remote-User: admin``; ProxyFix rewrites
``REMOTE_ADDR`` from the header, so a check on ``request.remote_addr`` believes the client.
"""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_casbin_guard import ConfigurationError, CurrentUser, Flask

PROXY = "10.0.0.2"
CLIENT = "203.0.113.9"


def proxied_app(guard_config: dict[str, Any], trusted: list[str]) -> Flask:
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_AUTH=["remote_user"], GUARD_TRUSTED_PROXIES=trusted)

    @app.get("/whoami", authorize="AUTH")
    def whoami(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    @app.get("/addr", authorize="OPEN")
    def addr() -> dict[str, Any]:
        from flask import request

        return {"remote_addr": request.remote_addr}

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
    return app


def test_a_client_cannot_pass_for_the_proxy_through_x_forwarded_for(
    guard_config: dict[str, Any],
) -> None:
    client = proxied_app(guard_config, [PROXY]).test_client()
    spoof = {"X-Forwarded-For": PROXY, "X-Remote-User": "alice"}
    # ProxyFix really rewrites the address the app sees: the attack's premise holds.
    seen = client.get("/addr", headers=spoof, environ_base={"REMOTE_ADDR": CLIENT}).json
    assert seen == {"remote_addr": PROXY}
    answer = client.get("/whoami", headers=spoof, environ_base={"REMOTE_ADDR": CLIENT})
    assert answer.status_code == 401
    assert "alice" not in answer.get_data(as_text=True)


def test_the_real_proxy_behind_proxy_fix_is_trusted(guard_config: dict[str, Any]) -> None:
    client = proxied_app(guard_config, [PROXY]).test_client()
    # The proxy connects and says who the client was: ProxyFix rewrites REMOTE_ADDR to CLIENT.
    headers = {"X-Forwarded-For": CLIENT, "X-Remote-User": "alice"}
    answer = client.get("/whoami", headers=headers, environ_base={"REMOTE_ADDR": PROXY})
    assert (answer.status_code, answer.json) == (200, {"user": "alice"})


def test_a_trusted_network_with_host_bits_is_a_configuration_error(
    guard_config: dict[str, Any],
) -> None:
    app = proxied_app(guard_config, ["10.0.0.2/8"])
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ConfigurationError, match="GUARD_TRUSTED_PROXIES"):
        app.test_client().get("/whoami", environ_base={"REMOTE_ADDR": PROXY})
    network = proxied_app(guard_config, ["10.0.0.0/8"]).test_client()
    answer = network.get(
        "/whoami", headers={"X-Remote-User": "bob"}, environ_base={"REMOTE_ADDR": "10.9.8.7"}
    )
    assert answer.json == {"user": "bob"}
