"""`flask --app examples.acme run`, as a Flask user tries first, finds acme's factory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask.cli import ScriptInfo

from flask_casbin_guard import Flask

ROOT = Path(__file__).resolve().parents[2]


def test_flask_app_option_finds_the_factory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACME_POLICY", f"sqlite:///{tmp_path / 'acme.db'}")
    app = ScriptInfo(app_import_path="examples.acme").load_app()
    assert isinstance(app, Flask)
    assert app.name == "acme"
    assert app.test_client().get("/").status_code == 200
    assert app.test_client().get("/store").status_code == 401


def test_flask_cli_lists_acme_routes(tmp_path: Path) -> None:
    env = {**os.environ, "ACME_POLICY": f"sqlite:///{tmp_path / 'acme.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "examples.acme", "routes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "/store/<sid>" in done.stdout
