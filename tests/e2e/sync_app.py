"""A tiny guarded app for the multi-process tests: it reports its pid and a decision."""

from __future__ import annotations

import os
import time
from typing import Any

from flask_casbin_guard import Flask


def create_app() -> Flask:
    app = Flask("sync_app")
    app.config.update(
        GUARD_AUTH=[],
        GUARD_POLICY=os.environ["GUARD_POLICY"],
        GUARD_WATCHER=os.environ.get("GUARD_WATCHER") or None,
        GUARD_WATCHER_INTERVAL=float(os.environ.get("GUARD_WATCHER_INTERVAL", "5")),
    )

    @app.get("/decide", authorize="OPEN")
    def decide(user: str, role: str = "employee", pause: float = 0.0) -> dict[str, Any]:
        # Decided first, on the machine-wide monotonic clock the test reads too: the time a
        # change is first seen is then the worker's, not the end of a sweep of requests.
        allowed, at = app.guard.has_role(user, role), time.monotonic()
        time.sleep(min(pause, 1.0))  # keeps a worker busy so that others take the next requests
        return {"pid": os.getpid(), "allowed": allowed, "at": at}

    return app
