"""Dependencies: floors only, no renamed predecessor installed beside its successor, pip check.

``casbin`` was renamed ``pycasbin`` (1.44), ``casbin-sqlalchemy-adapter`` became
``sqlalchemy-adapter``, and we use ``libpass``, the maintained fork of ``passlib``. Each pair
installs the same import package (``casbin``, ``passlib``...), so with both installed the files on
disk are a mix of two releases while ``pip check`` still says nothing (casbin.md §0). The checks
are plain functions, each shown to fail on a synthetic bad input, then run on this environment.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

#: old distribution -> the successor we depend on (same import package)
REPLACED = {
    "casbin": "pycasbin",
    "casbin-sqlalchemy-adapter": "sqlalchemy-adapter",
    "passlib": "libpass",
}
#: import package -> the one distribution allowed to provide it
IMPORT_OWNERS = {
    "casbin": "pycasbin",
    "sqlalchemy_adapter": "sqlalchemy-adapter",
    "passlib": "libpass",
}
#: never pinned at all, not even with an upper bound: the host app chooses their versions
NEVER_CAPPED = {"flask", "werkzeug"}


def normalize(name: str) -> str:
    """PEP 503 name: ``Casbin_SQLAlchemy.Adapter`` -> ``casbin-sqlalchemy-adapter``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Mapping[str, Any]) -> list[tuple[str, Requirement]]:
    """``(group, requirement)`` for the dependencies and every optional-dependency group."""
    project = pyproject.get("project", {})
    found = [("dependencies", Requirement(text)) for text in project.get("dependencies", [])]
    for group, texts in project.get("optional-dependencies", {}).items():
        found += [(f"optional-dependencies.{group}", Requirement(text)) for text in texts]
    return found


def pin_problems(pyproject: Mapping[str, Any]) -> list[str]:
    """Exact pins (``==``, ``===``) anywhere; any cap on Flask or Werkzeug."""
    problems = []
    for group, requirement in requirements(pyproject):
        name = normalize(requirement.name)
        for spec in requirement.specifier:
            if spec.operator in ("==", "==="):
                problems.append(f"{group}: {requirement} pins an exact version")
            elif name in NEVER_CAPPED and spec.operator not in (">=", ">", "!="):
                problems.append(f"{group}: {requirement} caps {requirement.name}")
    return problems


def replaced_problems(installed: Iterable[str]) -> list[str]:
    """Old distributions installed (with or without their successor)."""
    names = {normalize(name) for name in installed}
    return [
        f"{old} is installed" + (f" beside {new}" if new in names else "")
        for old, new in REPLACED.items()
        if old in names
    ]


def owner_problems(owners: Mapping[str, list[str]]) -> list[str]:
    """Import packages provided by anything but their one allowed distribution."""
    problems = []
    for package, allowed in IMPORT_OWNERS.items():
        found = sorted({normalize(name) for name in owners.get(package, [])})
        if found != [allowed]:
            problems.append(f"import package {package!r} comes from {found}, not [{allowed!r}]")
    return problems


def file_owner_problem(module_file: str, distribution: str) -> str | None:
    """Whether ``module_file`` is one of the files ``distribution`` installed (its RECORD)."""
    dist = importlib.metadata.distribution(distribution)
    target = Path(module_file).resolve()
    if any(Path(str(dist.locate_file(f))).resolve() == target for f in dist.files or ()):
        return None
    return f"{module_file} is not a file of {distribution}"


# -- the checks fail on bad input ------------------------------------------------------------

BAD_PYPROJECT = """
[project]
dependencies = ["flask==3.1.0", "pycasbin>=2.8", "Werkzeug<3.2", "limits~=3.13"]
[project.optional-dependencies]
test = ["pytest===8.0.0", "hypothesis>=6.100"]
postgres = ["psycopg[binary]==3.2.1; python_version >= '3.11'"]
"""


def test_pin_check_catches_exact_pins_and_capped_flask() -> None:
    problems = pin_problems(tomllib.loads(BAD_PYPROJECT))
    assert problems == [
        "dependencies: flask==3.1.0 pins an exact version",
        "dependencies: Werkzeug<3.2 caps Werkzeug",
        "optional-dependencies.test: pytest===8.0.0 pins an exact version",
        'optional-dependencies.postgres: psycopg[binary]==3.2.1; python_version >= "3.11" '
        "pins an exact version",
    ]


def test_pin_check_accepts_floors() -> None:
    good = '[project]\ndependencies = ["flask>=3.1", "werkzeug>=3,!=3.0.1", "limits~=3.13"]'
    assert pin_problems(tomllib.loads(good)) == []


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (["pycasbin", "casbin"], ["casbin is installed beside pycasbin"]),
        (["Casbin_SQLAlchemy.Adapter"], ["casbin-sqlalchemy-adapter is installed"]),
        (["libpass", "PassLib"], ["passlib is installed beside libpass"]),
        (["pycasbin", "sqlalchemy_adapter", "libpass", "casbin-fastapi-decorator"], []),
    ],
    ids=["casbin", "adapter", "passlib", "clean"],
)
def test_replaced_check(installed: list[str], expected: list[str]) -> None:
    assert replaced_problems(installed) == expected


def test_owner_check_catches_shared_and_foreign_import_packages() -> None:
    owners = {
        "casbin": ["pycasbin", "casbin"],  # two RECORDs claim casbin/
        "sqlalchemy_adapter": ["sqlalchemy_adapter"],
        "passlib": ["passlib"],
    }
    assert owner_problems(owners) == [
        "import package 'casbin' comes from ['casbin', 'pycasbin'], not ['pycasbin']",
        "import package 'passlib' comes from ['passlib'], not ['libpass']",
    ]


def test_file_owner_check_catches_a_foreign_file() -> None:
    import flask

    assert file_owner_problem(str(flask.__file__), "pycasbin") is not None


# -- this environment ------------------------------------------------------------------------


def test_pyproject_has_floors_only() -> None:
    with PYPROJECT.open("rb") as stream:
        pyproject = tomllib.load(stream)
    assert len(requirements(pyproject)) > 10  # the file really was read
    assert pin_problems(pyproject) == []


def test_no_replaced_distribution_is_installed() -> None:
    installed = [dist.metadata["Name"] for dist in importlib.metadata.distributions()]
    assert {"pycasbin", "sqlalchemy-adapter", "libpass"} <= {normalize(n) for n in installed}
    assert replaced_problems(installed) == []


def test_import_packages_come_from_the_successors() -> None:
    assert owner_problems(importlib.metadata.packages_distributions()) == []
    for module, distribution in IMPORT_OWNERS.items():
        imported = importlib.import_module(module)
        assert imported.__file__ is not None
        assert file_owner_problem(imported.__file__, distribution) is None


def test_pip_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
