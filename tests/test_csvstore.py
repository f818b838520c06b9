"""The CSV file store: strict reads, in-place atomic writes that keep comments and order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flask_casbin_guard.errors import PolicyError
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.csvstore import CsvStore

ARITIES = {"p": 3, "g": 2}
TEXT = "# roles\ng, alice, employee\n\n# rights\np, employee, store:1, read\n"


@pytest.fixture
def store(tmp_path: Path) -> CsvStore:
    path = tmp_path / "policy.csv"
    path.write_text(TEXT)
    return CsvStore(path, ARITIES)


def test_load_and_version(store: CsvStore) -> None:
    version, rows = store.load_versioned()
    assert rows == [
        PolicyRow("g", ("alice", "employee")),
        PolicyRow("p", ("employee", "store:1", "read")),
    ]
    assert version == store.version()
    store.path.write_text(TEXT + "g, bob, employee\n")  # edited by hand
    assert store.version() != version


def test_add_appends_and_keeps_comments(store: CsvStore) -> None:
    added = store.add([PolicyRow("g", ("bob", "employee")), PolicyRow("g", ("alice", "employee"))])
    assert added == [PolicyRow("g", ("bob", "employee"))]
    assert store.path.read_text() == TEXT + "g, bob, employee\n"
    assert store.add([PolicyRow("g", ("bob", "employee"))]) == []


def test_remove_drops_exactly_those_lines(store: CsvStore) -> None:
    store.path.write_text(TEXT + "g, alice, employee\n")  # a duplicate line goes too
    removed = store.remove([PolicyRow("g", ("alice", "employee")), PolicyRow("g", ("zed", "x"))])
    assert removed == [PolicyRow("g", ("alice", "employee"))]
    assert store.path.read_text() == "# roles\n\n# rights\np, employee, store:1, read\n"


def test_invalid_rows_change_nothing(store: CsvStore) -> None:
    before = store.path.read_bytes()
    for bad in (
        PolicyRow("p", ("a", "b")),
        PolicyRow("g", ("a", "b,c")),
        PolicyRow("x", ("a", "b")),
    ):
        with pytest.raises(PolicyError, match="row 2"):
            store.add([PolicyRow("g", ("ok", "role")), bad])
    assert store.path.read_bytes() == before


def test_replace_and_import(store: CsvStore) -> None:
    assert store.replace_all([PolicyRow("g", ("x", "y"))]) == 1
    assert store.path.read_text() == "g, x, y\n"
    seen: list[int] = []
    rows = [PolicyRow("g", (f"u{i}", "r")) for i in range(25)]
    assert store.import_rows(rows, batch_size=10, progress=seen.append) == 25
    assert seen == [10, 20, 25]
    with pytest.raises(PolicyError, match="row 3"):
        store.import_rows([*rows[:2], PolicyRow("g", ("only-one",))])
    assert len(store.load()) == 26


def test_writes_are_atomic_renames(store: CsvStore) -> None:
    inode = os.stat(store.path).st_ino
    store.add([PolicyRow("g", ("bob", "employee"))])
    assert os.stat(store.path).st_ino != inode  # a new file renamed over the old one
    assert not [p for p in store.path.parent.iterdir() if p.name.startswith(".policy-")]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy file"):
        CsvStore(tmp_path / "nope.csv", ARITIES)
    created = CsvStore(tmp_path / "new.csv", ARITIES, create=True)
    assert created.load() == []


def test_reloads_check_only_changed_lines_but_still_check_them(store: CsvStore) -> None:
    first = store.load()
    store.path.write_text(TEXT + "g, bob, employee\n")
    again = store.load()
    assert again[0] is first[0] and again[1] is first[1]  # unchanged lines: validated once
    assert again[2] == PolicyRow("g", ("bob", "employee"))
    store.path.write_text(TEXT + "g, bob\n")  # a changed line is still checked
    with pytest.raises(PolicyError, match="line 6"):
        store.load()
    store.path.write_text(TEXT)
    assert store.load() == first
    assert store.load({"p": 3, "g": 2, "g2": 2}) == first  # other arities: no reuse, same answer


def test_reload_reuses_unchanged_rows_and_forgets_removed_ones(store: CsvStore) -> None:
    first = store.load()
    store.path.write_text(TEXT + "p, employee, store:2, read\n")
    second = store.load()
    assert second[:2] == first and all(a is b for a, b in zip(first, second, strict=False))
    assert second[2] == PolicyRow("p", ("employee", "store:2", "read"))
    assert len(store._known) == 3
    # A removed row leaves the cache: it stays as small as the file, whatever the edits.
    store.path.write_text("g, alice, employee\n")
    assert store.load() == [PolicyRow("g", ("alice", "employee"))]
    assert list(store._known.values()) == [PolicyRow("g", ("alice", "employee"))]


def test_a_remembered_row_needs_the_exact_line(store: CsvStore) -> None:
    store.load()
    # Same values with other spacing: checked again (and still the same row).
    store.path.write_text("g,alice,employee\np,employee,store:1,read\n")
    assert store.load() == [
        PolicyRow("g", ("alice", "employee")),
        PolicyRow("p", ("employee", "store:1", "read")),
    ]
    store.path.write_text("g, alice, employee\np, employee, store:1, read, extra\n")
    with pytest.raises(PolicyError, match="line 2"):
        store.load()
