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
