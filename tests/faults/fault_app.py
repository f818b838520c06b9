"""The guarded app the fault tests run under gunicorn; every answer names its worker.

Its users are authenticated by a trusted proxy's header (``X-Remote-User`` from 127.0.0.1), so a
request goes through the whole pipeline: authentication, the account check against the user
store in the policy database, then the Casbin decision.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Response

from flask_casbin_guard import Flask
from flask_casbin_guard.pipeline import STATE_KEY

#: the users whose decisions ``/check`` reports, against the role ``employee``
USERS = ("alice", "bob", "carol", "dave")


def create_app() -> Flask:
    app = Flask("fault_app")
    app.config.update(
        GUARD_AUTH=["remote_user"],
        GUARD_TRUSTED_PROXIES=["127.0.0.1"],
        GUARD_POLICY=os.environ["GUARD_POLICY"],
        GUARD_WATCHER=os.environ.get("GUARD_WATCHER") or None,
        GUARD_WATCHER_INTERVAL=float(os.environ.get("GUARD_WATCHER_INTERVAL", "5")),
    )

    @app.after_request
    def name_the_worker(response: Response) -> Response:
        # Refusals too: they are rendered by the guard, then pass through here.
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    @app.get("/check", authorize="OPEN")
    def check(pause: float = 0.0) -> dict[str, Any]:
        # Decided first, then the pause that keeps this worker busy so that others take the
        # next requests: the answer is the policy as it was when the request came in.
        roles = {user: app.guard.has_role(user, "employee") for user in USERS}
        probe = probe_of(app)
        time.sleep(min(pause, 1.0))
        return {"pid": os.getpid(), "employee": roles, **probe.report()}

    @app.get("/whoami", authorize="AUTH")
    def whoami(pause: float = 0.0) -> dict[str, Any]:
        time.sleep(min(pause, 1.0))
        return {"pid": os.getpid()}

    @app.get("/staff", authorize="employee")
    def staff() -> dict[str, Any]:
        return {"pid": os.getpid()}

    if os.environ.get("FAULT_PREPARE_AT_IMPORT") == "1":
        # As an extension-style app does in init_app: the policy is loaded when the app is
        # created, so under ``gunicorn --preload`` in the master, before the workers fork.
        with app.app_context():
            app.guard.policies.list()

    return app


class Probe:
    """What a worker's watcher did, timed on the machine-wide monotonic clock.

    The tests compare these times with their own ``time.monotonic()`` (one clock for every
    process on Linux), so a propagation delay is measured where it happens, not through a sweep
    of requests whose own duration grows with the machine's load.
    """

    def __init__(self, app: Flask) -> None:
        state = app.extensions[STATE_KEY]
        self.reads = 0
        self.last_read = 0.0
        self.reloaded = 0.0
        self.policies = state.policies
        watcher, reload = state._watcher, self.policies.reload
        if watcher is not None:
            read = watcher.version

            def counted_read() -> int:
                version = read()
                self.reads, self.last_read = self.reads + 1, time.monotonic()
                return int(version)

            watcher.version = counted_read

        def timed_reload(force: bool = False) -> bool:
            swapped = reload(force)
            if swapped:
                self.reloaded = time.monotonic()
            return swapped

        self.policies.reload = timed_reload

    def report(self) -> dict[str, Any]:
        return {
            "version": self.policies.version,
            "reads": self.reads,
            "last_read": self.last_read,
            "reloaded": self.reloaded,
        }


def probe_of(app: Flask) -> Probe:
    """The probe of ``app`` in this process: made at the first call, after the guard built
    its policy and watcher (a forked worker would keep the master's otherwise: hence the pid)."""
    found = app.extensions.get("fault_probe")
    if found is None or found[0] != os.getpid():
        found = (os.getpid(), Probe(app))
        app.extensions["fault_probe"] = found
    return found[1]
