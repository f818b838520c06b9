"""Smoke test of a built distribution, run by `make dist-check` in an empty venv outside the repo.

Usage: python tests/dist_smoke.py DIST_DIR. It checks that the package came from site-packages
(not the source tree), that the sdist carries what the wheel needs, and that an app guarded from
the installed wheel answers 200, 401 and 403.
"""

from __future__ import annotations

import base64
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path


def _basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def check_archives(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("py.typed", "model.conf", "policy.csv", "__init__.py"):
        assert f"flask_casbin_guard/{needed}" in names, f"{wheel.name} lacks {needed}"
    assert not any(name.startswith(("tests/", "examples/")) for name in names), names
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    for needed in ("LICENSE", "README.md", "pyproject.toml", "src/flask_casbin_guard/py.typed"):
        assert any(member.endswith("/" + needed) for member in members), f"sdist lacks {needed}"


def check_app() -> None:
    import flask_casbin_guard
    from flask_casbin_guard import Flask
    from flask_casbin_guard.authn.passwords import PasswordHasher

    where = Path(flask_casbin_guard.__file__).resolve()
    assert "site-packages" in where.parts, f"imported from {where}, not from the installed wheel"

    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp, "policy.csv")
        policy.write_text("p, reader, /books, GET\ng, alice, reader\n", encoding="utf-8")
        hashes = {
            "alice": PasswordHasher().hash("alice-pw"),
            "bob": PasswordHasher().hash("bob-pw"),
        }
        app = Flask("smoke")
        app.config.update(
            GUARD_POLICY=str(policy), GUARD_AUTH=["basic"], GUARD_GET_USER_PASS=hashes.get
        )

        @app.get("/", authorize="OPEN")
        def home() -> str:
            return "home"

        @app.get("/books", authorize="ROUTE")
        def books() -> str:
            return "books"

        client = app.test_client()
        answers = {
            "open": client.get("/").status_code,
            "anonymous": client.get("/books").status_code,
            "alice": client.get("/books", headers=_basic("alice", "alice-pw")).status_code,
            "bob": client.get("/books", headers=_basic("bob", "bob-pw")).status_code,
        }
    expected = {"open": 200, "anonymous": 401, "alice": 200, "bob": 403}
    assert answers == expected, f"{answers} != {expected}"
    print(f"dist smoke test: {flask_casbin_guard.__name__} from {where.parent}: {answers}")


if __name__ == "__main__":
    check_archives(Path(sys.argv[1]))
    check_app()
