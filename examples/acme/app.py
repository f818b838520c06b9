"""acme: the seed application of flask_casbin_guard.

Employees list stores; the manager of a store changes its stock; auditors read reports.
Policies live in an SQLite database (``instance/acme.db``, seeded from ``policy.csv`` on first
start; ``ACME_POLICY`` may name another SQLAlchemy URL) and can be changed while it runs with
``flask --app 'examples.acme.app:create_app()' guard role add ...`` or the admin API under
``/guard``. Run it with ``make demo`` (or ``python -m examples.acme``) from the repository
root; under gunicorn: ``gunicorn -b 127.0.0.1:8000 'examples.acme.app:create_app()'``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from flask_casbin_guard import CurrentUser, Flask, current_user
from flask_casbin_guard.admin import admin_blueprint
from flask_casbin_guard.auth import auth_blueprint

HERE = Path(__file__).parent
log = logging.getLogger("acme")

#: the demo's data: an in-memory inventory per store
STORES: dict[int, dict[str, Any]] = {
    1: {"name": "Downtown", "stock": {"apple": 10, "pear": 4}},
    2: {"name": "Harbour", "stock": {"apple": 3}},
}


@dataclasses.dataclass
class StockLine:
    """One line of a stock delivery (``PUT /store/<sid>/stock``)."""

    product: str
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")


def load_users(path: Path = HERE / "users.json") -> dict[str, str]:
    """Demo users: login -> argon2id hash (passwords in README.md)."""
    users: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return users


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask("acme", root_path=str(HERE), instance_path=str(HERE / "instance"))
    users = load_users()
    secret = os.environ.get("ACME_JWT_SECRET")
    if secret is None:
        # A fresh secret per run: tokens die with the process, and no secret is committed.
        secret = secrets.token_urlsafe(48)
        log.warning("ACME_JWT_SECRET is not set: using a random secret for this run")
    session_key = os.environ.get("ACME_SECRET_KEY") or secrets.token_urlsafe(48)
    app.config.update(
        GUARD_MODEL="model.conf",
        # The embedded SQLite default (instance/acme.db), seeded from policy.csv when empty.
        GUARD_POLICY=os.environ.get("ACME_POLICY", "sqlite:///acme.db"),
        GUARD_POLICY_SEED="policy.csv",
        SECRET_KEY=session_key,
        GUARD_AUTH=["bearer", "session", "basic"],
        GUARD_GET_USER_PASS=users.get,
        GUARD_JWT_SECRET=secret,
    )
    app.config.update(config or {})
    register_routes(app)
    app.register_blueprint(admin_blueprint(authorize="policy_admin"), url_prefix="/guard")
    app.register_blueprint(auth_blueprint(), url_prefix="/auth")
    return app


def register_routes(app: Flask) -> None:
    @app.get("/", authorize="OPEN")
    def index() -> dict[str, Any]:
        return {"app": "acme", "stores": len(STORES)}

    @app.get("/whoami", authorize="AUTH")
    def whoami(user: CurrentUser) -> dict[str, Any]:
        return {"user": user}

    @app.post("/login", authorize="AUTH")
    def login() -> dict[str, Any]:
        return {"token": app.guard.create_token(app.guard.current_user), "token_type": "Bearer"}

    @app.get("/store", authorize="employee")
    def get_store(pattern: str = "%", order: Literal["id", "name"] = "id") -> dict[str, Any]:
        """Stores whose name matches ``pattern`` (``%`` matches anything)."""
        glob = pattern.replace("*", "[*]").replace("?", "[?]").replace("%", "*")
        found = [
            (sid, store["name"])
            for sid, store in STORES.items()
            if fnmatch.fnmatchcase(store["name"], glob)
        ]
        found.sort(key=lambda pair: pair[0] if order == "id" else pair[1])
        return {"stores": dict(found), "user": str(current_user)}

    @app.post("/store/<sid>", authorize=("store", "sid", "manager"))
    def post_store_sid(sid: int, product: str, quantity: int) -> tuple[dict[str, Any], int]:
        """Add ``quantity`` units of ``product`` to store ``sid`` (its managers only)."""
        store = STORES.get(sid)
        if store is None:
            return {"error": "not_found", "message": f"no store {sid}", "status": 404}, 404
        stock = store["stock"]
        stock[product] = stock.get(product, 0) + quantity
        return {"store": sid, "product": product, "quantity": stock[product]}, 200

    @app.put("/store/<sid>/stock", authorize=("store", "sid", "manager"), strict=True)
    def put_stock(sid: int, lines: list[StockLine]) -> dict[str, Any]:
        """Receive a delivery: a JSON list of {product, quantity} lines."""
        stock = STORES[sid]["stock"] if sid in STORES else {}
        for line in lines:
            stock[line.product] = stock.get(line.product, 0) + line.quantity
        return {"store": sid, "stock": stock}

    @app.get("/reports", authorize="ROUTE")
    def reports(day: dt.date | None = None) -> dict[str, Any]:
        units = sum(sum(store["stock"].values()) for store in STORES.values())
        return {"stores": len(STORES), "units": units, "day": (day or dt.date.today()).isoformat()}

    @app.delete("/store/<sid>", authorize="CLOSE")
    def delete_store(sid: int) -> dict[str, Any]:
        raise RuntimeError("closed routes never run")  # pragma: no cover
