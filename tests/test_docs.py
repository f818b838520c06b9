"""Every Python snippet in the docs runs and its assertions hold."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def snippets() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for index, code in enumerate(BLOCK.findall(path.read_text())):
            if "app = Flask(" in code and "test_client()" in code:  # self-contained examples
                found.append((f"{path.name}#{index + 1}", code))
    return found


def test_the_docs_have_runnable_snippets() -> None:
    assert len(snippets()) >= 8


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_snippet_runs(where: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real module, so dataclasses and get_type_hints can find the snippet's own names.
    module = types.ModuleType(f"docs_snippet_{abs(hash(where))}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, where, "exec"), module.__dict__)  # noqa: S102 - our own documentation


def test_every_proof_named_in_security_md_exists() -> None:
    """docs/security.md names its proofs as ``file.py::test``; a renamed test must not go stale."""
    tests = Path(__file__).parent
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    missing, current, named = [], None, 0
    for match in re.finditer(r"`((?:[\w/]+/)?test_\w+\.py)?(?:::(\w+))?`", text):
        path, name = match.group(1), match.group(2)
        current = path or current
        if path and not (tests / path).is_file():
            missing.append(path)
        elif name and current:
            named += 1
            if not re.search(rf"def {name}\b", (tests / current).read_text(encoding="utf-8")):
                missing.append(f"{current}::{name}")
    assert named > 50 and not missing
