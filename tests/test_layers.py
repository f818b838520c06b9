"""The package's import layers point down only, and Flask globals stay in three modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "flask_casbin_guard"

#: module (or sub-package) -> layer; a module may import only from strictly lower layers,
#: or from its own sub-package.
LAYERS = {
    "errors": 0,
    "types": 0,
    "memo": 0,
    "config": 1,
    "identity": 1,
    "signals": 1,
    "authn": 2,
    "params": 2,
    "store": 2,
    "sync": 2,
    "authz": 3,
    "loading": 4,
    "pipeline": 4,
    "render": 4,
    "policies": 5,
    "classviews": 5,
    "validation": 5,
    "cli": 6,
    "state": 6,
    "accounts": 6,
    "extension": 7,
    "app": 8,
    "admin": 9,
    "auth": 9,
    "__init__": 10,
}
#: the only modules that may use the request-bound globals
FLASK_GLOBALS = {"request", "g", "current_app", "session"}
GLOBAL_USERS = {"pipeline", "extension", "cli"}


def unit(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported package-relative unit, names) for every runtime import of the package."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, list[str]]] = []
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    depth = len(path.relative_to(PACKAGE).parts) - 1
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, ast.ImportFrom):
            continue
        names = [alias.name for alias in node.names]
        if node.level:
            if node.level - 1 > depth:
                continue
            base = list(path.relative_to(PACKAGE).parts[: depth - (node.level - 1)])
            target = [*base, *(node.module.split(".") if node.module else [])]
            if target:
                found.append((target[0], names))
            else:
                found.extend((name, [name]) for name in names)
        elif node.module and node.module.startswith("flask_casbin_guard"):
            target = node.module.split(".")[1:]
            found.append((target[0] if target else "__init__", names))
        elif node.module == "flask":
            found.append(("flask", names))
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    here = unit(path)
    assert here in LAYERS, f"{here} has no layer: add it to LAYERS"
    for target, _ in imports(path):
        if target == "flask" or target == here:
            continue
        assert target in LAYERS, f"{path.name} imports unknown unit {target}"
        assert LAYERS[target] < LAYERS[here], f"{here} (L{LAYERS[here]}) imports {target}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_flask_globals_stay_in_three_modules(path: Path) -> None:
    used = {
        name for target, names in imports(path) if target == "flask" for name in names
    } & FLASK_GLOBALS
    if unit(path) not in GLOBAL_USERS:
        assert not used, f"{path.name} uses Flask globals {sorted(used)}"


def test_modules_stay_small() -> None:
    for path in modules():
        lines = len(path.read_text().splitlines())
        assert lines < 400, f"{path.name} has {lines} lines"


def test_only_the_engine_imports_casbin() -> None:
    for path in modules():
        tree = ast.parse(path.read_text())
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and not node.level
        }
        if "casbin" in names:
            assert path.name == "engine.py", f"{path.name} imports casbin"
