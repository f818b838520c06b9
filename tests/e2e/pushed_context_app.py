"""An app in the Flask-SQLAlchemy shape: an application context pushed once, at import time.

Such an app context is never popped, so every request a process serves runs inside it: Flask
only pushes a new app context for a request when none of the same app is active. Whatever the
guard remembers per request must therefore not live in ``flask.g``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response

from flask_casbin_guard import CasbinGuard, current_user
from flask_casbin_guard.authn.passwords import PasswordHasher
from flask_casbin_guard.params.markers import CurrentUser

POLICIES = Path(__file__).parents[1] / "policies"
PASSWORDS = {login: f"{login}-password" for login in ("alice", "bob", "dave")}


def create_app(**config: Any) -> Flask:
    """alice and bob are employees, bob manages store 7, dave is an auditor (tests/policies)."""
    hasher = PasswordHasher()
    hashes = {login: hasher.hash(password) for login, password in PASSWORDS.items()}
    app = Flask("pushed_context")
    app.config.update(
        GUARD_AUTH=["basic"],
        GUARD_MODEL=str(POLICIES / "rbac_model.conf"),
        GUARD_POLICY=str(POLICIES / "rbac_policy.csv"),
        GUARD_GET_USER_PASS=hashes.get,
        GUARD_MODE=os.environ.get("GUARD_MODE", "prod"),
    )
    app.config.update(config)
    guard = CasbinGuard(app)

    @app.after_request
    def tell_caller(response: Response) -> Response:
        # An app's own hook reading the caller, as logging or audit hooks do.
        response.headers["X-Caller"] = str(current_user) if current_user else "-"
        return response

    @app.get("/staff")
    @guard.authorize("employee")
    def staff() -> dict[str, Any]:
        return {"user": guard.current_user, "pid": os.getpid()}

    @app.get("/whoami")
    @guard.authorize("OPEN")
    def whoami(user: CurrentUser | None) -> dict[str, Any]:
        return {"user": user, "pid": os.getpid()}

    @app.get("/report")
    @guard.authorize("ROUTE")
    def report() -> dict[str, Any]:
        return {"user": guard.current_user, "pid": os.getpid()}

    @app.get("/store/<int:sid>")
    @guard.authorize(("store", "sid", "manager"))
    def store(sid: int) -> dict[str, Any]:
        return {"user": guard.current_user, "sid": sid, "pid": os.getpid()}

    return app


def serve() -> Flask:
    """What gunicorn loads: the app, with its context pushed as the module-level code would."""
    app = create_app()
    app.app_context().push()
    return app
