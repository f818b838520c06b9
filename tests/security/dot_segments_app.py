"""A file-serving app whose policy grants prefixes: ``file:public/*`` with Casbin's keyMatch.

Served by the test client and by gunicorn (``tests.security.dot_segments_app:create_app()``).
The ``fake`` scheme (``X-Fake-User``) keeps requests short; it needs ``TESTING``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_casbin_guard import CasbinGuard

MODEL = """\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && keyMatch(r.obj, p.obj) && r.act == p.act
"""

POLICY = """\
p, alice, file:public/*, read
p, alice, doc:public*, read
p, alice, note:*, read
"""


def create_app(policy_path: str | None = None) -> Flask:
    app = Flask("dot_segments")
    if policy_path is None:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as file:
            file.write(POLICY)
        policy_path = file.name
    app.config.update(
        TESTING=True, GUARD_AUTH=["fake"], GUARD_MODEL=MODEL, GUARD_POLICY=policy_path
    )
    guard = CasbinGuard(app)
    app.extensions["loaded"] = loaded = []
    app.extensions["served"] = served = []

    @guard.object_loader("doc")
    def load_doc(name: str) -> str:
        loaded.append(name)
        return f"doc:{name}"

    @app.get("/files/<path:name>")
    @guard.authorize(("file", "name", "read"))
    def files(name: str) -> dict[str, Any]:
        served.append(name)
        return {"name": name}

    @app.route("/read", methods=["GET", "POST"])
    @guard.authorize(("file", "name", "read"))
    def read(name: str) -> dict[str, Any]:
        served.append(name)
        return {"name": name}

    @app.get("/docs/<name>")
    @guard.authorize(("doc", "name", "read"))
    def docs(name: str) -> dict[str, Any]:
        served.append(name)
        return {"name": name}

    @app.get("/notes/<path:a>/<path:b>")
    @guard.authorize([("note", "a", "read"), ("note", "b", "read")])
    def notes(a: str, b: str) -> dict[str, Any]:
        served.append(f"{a} {b}")
        return {"a": a, "b": b}

    return app
