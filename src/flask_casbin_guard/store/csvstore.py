"""A policy CSV file as a store: read strictly, changed in place, written atomically.

Changes keep the file's comments and order: removed rows lose their line, added rows are
appended. The new file is written beside the old one, flushed to disk and renamed over it (then
the directory is flushed), so a reader (or a crash) never sees half a file. Writers take a lock
on the file's directory (``flock``) as well as a thread lock, so a CLI command and an app
writing one file run one after the other; several processes *serving* one policy should still
use a database store, whose changes they hear of.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from ..errors import PolicyError
from .base import Planner
from .csv import (
    PolicyRow,
    check_row,
    decode_policy,
    diagnose_lines,
    format_line,
    parse_policy,
    split_line,
    split_lines,
)


class CsvStore:
    """Rows of the Casbin CSV file at ``path`` (created empty when ``create`` and missing)."""

    def __init__(
        self, path: str | Path, arities: Mapping[str, int], *, create: bool = False
    ) -> None:
        self.path = Path(path)
        self.url = str(self.path)
        self.arities = dict(arities)
        self._lock = threading.Lock()
        #: rows validated by the last load, by line: a reload re-checks only changed lines
        self._known: dict[int, PolicyRow] = {}
        if create and not self.path.exists():
            self._write([])
        if not self.path.is_file():
            raise PolicyError(f"GUARD_POLICY: no policy file at {self.url!r}")

    def close(self) -> None:
        """Nothing to release: every operation opens the file itself."""

    def version(self) -> int:
        """A hash of the file's bytes: it changes when anyone edits the file."""
        return _digest(self._read_bytes())

    def load_versioned(
        self, arities: Mapping[str, int] | None = None
    ) -> tuple[int, list[PolicyRow]]:
        data = self._read_bytes()
        version = _digest(data)
        text = decode_policy(data, self.url)
        del data  # a 100k-rule file: 4 MiB less at the reload's peak
        wanted = arities or self.arities
        # The remembered rows were checked against the store's arities only.
        known = self._known if dict(wanted) == self.arities else None
        rows = parse_policy(split_lines(text), wanted, self.url, known)
        return version, rows

    def diagnose(self, arities: Mapping[str, int]) -> tuple[list[PolicyRow], list[str]]:
        """The valid rows and a problem for each invalid line, naming file and line."""
        try:
            text = decode_policy(self._read_bytes(), self.url)
        except PolicyError as error:
            return [], [str(error)]
        return diagnose_lines(text.split("\n"), arities, self.url)

    def load(self, arities: Mapping[str, int] | None = None) -> list[PolicyRow]:
        return self.load_versioned(arities)[1]

    def export(self) -> list[PolicyRow]:
        return self.load()

    def write(
        self, plan: Planner, progress: Callable[[int], object] | None = None
    ) -> tuple[int, int]:
        """Decide a change from the file as it is now, writers locked out, then write it.

        ``plan(version, load)`` gets the file's version (its hash) and a function parsing it;
        whatever it raises leaves the file untouched. Every row is checked before the file is.

        :return: the version the plan saw and the version written (equal: nothing changed).
        """
        with self._lock, _locked(self.path.parent):
            data = self._read_bytes()
            before = _digest(data)
            text = decode_policy(data, self.url)
            change = plan(before, lambda: parse_policy(split_lines(text), self.arities, self.url))
            if not change:
                return before, before
            added = [format_line(row) for row in self._checked(change.added)]
            if change.replace:
                kept: list[str] = []
            else:
                lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
                kept = [line for line, row in _with_rows(lines) if row not in change.removed]
            after = self._write(kept + added)
        if progress is not None:
            progress(len(added))
        return before, after

    def add(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]:
        """Append the rows not in the file yet; return them."""
        batch = self._checked(rows)
        with self._lock, _locked(self.path.parent):
            lines = self._lines()
            present = {row for _, row in _parsed(lines)}
            added = [row for row in dict.fromkeys(batch) if row not in present]
            if added:
                self._write(lines + [format_line(row) for row in added])
        return added

    def remove(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]:
        """Drop every line holding one of exactly these rows; return those found."""
        targets = set(self._checked(rows))
        with self._lock, _locked(self.path.parent):
            lines = self._lines()
            found = {row for _, row in _parsed(lines) if row in targets}
            if found:
                kept = [line for line, row in _with_rows(lines) if row not in found]
                self._write(kept)
        return [row for row in dict.fromkeys(targets) if row in found]

    def replace_all(self, rows: Iterable[PolicyRow]) -> int:
        batch = list(dict.fromkeys(self._checked(rows)))
        with self._lock, _locked(self.path.parent):
            self._write([format_line(row) for row in batch])
        return len(batch)

    def import_rows(
        self,
        rows: Iterable[PolicyRow],
        batch_size: int = 5000,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """All or nothing: every row is checked before the file is rewritten once."""
        checked: list[PolicyRow] = []
        for index, row in enumerate(rows, start=1):
            checked.append(self._check(row, index))
            if progress is not None and index % batch_size == 0:
                progress(index)
        if progress is not None:
            progress(len(checked))
        if replace:
            return self.replace_all(checked)
        return len(self.add(checked))

    def _checked(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]:
        return self._checked_rows(rows, self.arities)

    def _check(self, row: PolicyRow, index: int) -> PolicyRow:
        return self._checked_rows([row], self.arities, index)[0]

    @staticmethod
    def _checked_rows(
        rows: Iterable[PolicyRow], arities: Mapping[str, int], start: int = 1
    ) -> list[PolicyRow]:
        checked = []
        for index, row in enumerate(rows, start=start):
            try:
                checked.append(check_row(row.ptype, row.values, arities))
            except ValueError as error:
                raise PolicyError(f"row {index} ({row.ptype}): {error}") from None
        return checked

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as error:
            raise PolicyError(f"cannot read {self.url!r}: {error}", original_error=error) from None

    def _lines(self) -> list[str]:
        text = decode_policy(self._read_bytes(), self.url)
        return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")

    def _write(self, lines: list[str]) -> int:
        """Replace the file by ``lines`` atomically; return the new version."""
        return replace_file(self.path, lines)


def write_policy_file(
    path: str | Path, rows: Iterable[PolicyRow], arities: Mapping[str, int]
) -> int:
    """Write ``rows`` as a policy CSV, atomically; return how many were written.

    Every row is checked first, with the grammar the reader uses, so whatever is written reads
    back as the same rows; on any error the file is left as it was.
    """
    checked = CsvStore._checked_rows(rows, arities)
    with _locked(Path(path).parent):
        replace_file(Path(path), [format_line(row) for row in checked])
    return len(checked)


def replace_file(path: Path, lines: list[str]) -> int:
    """Replace ``path`` by ``lines``: a temporary file beside it, flushed to disk, renamed over
    it, the directory flushed. Readers and crashes see the old file or the new one, whole.

    :return: the new version (the hash of the bytes written).
    """
    directory = path.parent
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    try:
        handle, temporary = tempfile.mkstemp(prefix=".policy-", dir=directory)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            if path.exists():
                os.chmod(temporary, path.stat().st_mode & 0o777)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_directory(directory)  # the rename itself survives a crash
    except OSError as error:
        raise PolicyError(f"cannot write {str(path)!r}: {error}", original_error=error) from None
    return _digest(data)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Writers of files in ``directory``, in any process, one at a time.

    The directory, not the file: the file is replaced by every write, so a lock on it would
    guard an inode the next writer no longer opens, and a lock file would litter the folder.
    """
    if sys.platform == "win32":  # pragma: no cover - no flock: the thread lock alone
        yield
        return
    import fcntl

    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError as error:
        raise PolicyError(
            f"cannot lock {str(directory)!r}: {error}", original_error=error
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _sync_directory(directory: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _with_rows(lines: list[str]) -> list[tuple[str, PolicyRow | None]]:
    """Each line with the row it holds (``None`` for comments, blanks and unparsable lines)."""
    result: list[tuple[str, PolicyRow | None]] = []
    for line in lines:
        stripped = line.strip()
        row = None
        if stripped and not stripped.startswith("#"):
            try:
                tokens = split_line(stripped)
                row = PolicyRow(tokens[0], tuple(tokens[1:]))
            except ValueError:
                row = None
        result.append((line, row))
    return result


def _parsed(lines: list[str]) -> list[tuple[str, PolicyRow]]:
    return [(line, row) for line, row in _with_rows(lines) if row is not None]
