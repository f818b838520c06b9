"""Casbin's CSV policy format, read strictly: a bad row is an error naming file and line.

The format is Casbin's, not RFC 4180: values are separated by top-level commas, commas inside
``()``/``[]`` belong to the value (ABAC ``eval`` rules), and there is no quoting.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from sys import intern

from ..errors import PolicyError

#: Longest value we accept: the ``casbin_rule`` columns are VARCHAR(255).
MAX_VALUE_LENGTH = 255

_TOKENS = re.compile(r"[,\[\]\(\)]")
_BRACKETS = re.compile(r"[\[\]\(\)]")
_CLOSING = {")": "(", "]": "["}
_QUOTES = "\"'"


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One validated policy line."""

    ptype: str
    values: tuple[str, ...]


def read_policy_file(path: str | Path, arities: Mapping[str, int]) -> list[PolicyRow]:
    """Read and validate a policy CSV.

    :param arities: number of values each ptype takes (``{"p": 3, "g": 2}``).
    :raises PolicyError: naming the file and line of the first bad row.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise PolicyError(
            f"cannot read policy file {str(path)!r}: {error}", original_error=error
        ) from None
    # "\n" only, as Casbin's file adapter: str.splitlines() would also break on \x0c, \u2028...
    return parse_policy(decode_policy(data, str(path)).split("\n"), arities, str(path))


def decode_policy(data: bytes, source: str) -> str:
    """The text of a policy file: UTF-8, a leading byte-order mark dropped.

    :raises PolicyError: naming the line of the first byte that is not UTF-8.
    """
    try:
        # utf-8-sig: editors that add a BOM would otherwise turn the first "p" into "\ufeffp".
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PolicyError(f"{source}, line {line}: not UTF-8 text", original_error=error) from None


def split_lines(text: str, chunk: int = 1 << 16) -> Iterator[str]:
    """``text.split("\\n")``, a chunk at a time: a reload never holds every line at once."""
    start = 0
    while True:
        cut = text.find("\n", start + chunk)
        if cut < 0:
            yield from text[start:].split("\n")
            return
        yield from text[start:cut].split("\n")
        start = cut + 1


def parse_policy(
    lines: Iterable[str],
    arities: Mapping[str, int],
    source: str,
    known: dict[int, PolicyRow] | None = None,
) -> list[PolicyRow]:
    """Validate policy lines; blank lines and ``#`` comments are skipped.

    :param known: rows already validated by an earlier load, by the hash of their line (for the
        same arities); updated in place with the rows of this load. A reload then checks only
        the lines that changed: most of a 100k-rule reload was re-validating unchanged rows.
        Hashes keep it small; a hit counts only if the line is exactly the row's text, so a
        collision can never substitute one rule for another.
    """
    rows: list[PolicyRow] = []
    append = rows.append
    cache: dict[int, PolicyRow] = known if known is not None else {}
    keys = array("q")  # each row's line hash: to forget rows that left the file
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            continue
        key = hash(stripped)
        keys.append(key)
        row = cache.get(key)
        if row is not None and stripped == ", ".join((row.ptype, *row.values)):
            append(row)
            continue
        try:
            row = _fast_row(stripped, arities) if not _BRACKETS.search(stripped) else None
            if row is None:  # brackets, or something to report: the careful path says what
                tokens = split_line(stripped)
                row = check_row(tokens[0], tokens[1:], arities)
        except ValueError as error:
            raise PolicyError(f"{source}, line {number}: {error}") from None
        append(row)
        # In place, not a new dict: a reload's peak memory holds one table of hashes, not two.
        cache[key] = row
    if len(cache) > len(rows):  # some rows left the file: keep only this load's
        cache.clear()
        cache.update(zip(keys, rows, strict=True))
    return rows


def diagnose_lines(
    lines: Iterable[str], arities: Mapping[str, int], source: str
) -> tuple[list[PolicyRow], list[str]]:
    """Every valid row and one problem per invalid line (``policy validate``; loading stops at
    the first)."""
    rows: list[PolicyRow] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            continue
        try:
            tokens = split_line(stripped)
            rows.append(check_row(tokens[0], tokens[1:], arities))
        except ValueError as error:
            problems.append(f"{source}, line {number}: {error}")
    return rows, problems


def _fast_row(line: str, arities: Mapping[str, int]) -> PolicyRow | None:
    """The row of a bracket-free line that is plainly valid, else ``None`` (checked slowly).

    Most policy lines are such: one printability test per line instead of several per value,
    and no bracket scanning, make a 100k-rule reload about twice as fast.
    """
    tokens = [token.strip() for token in line.split(",")]
    ptype, values = tokens[0], tokens[1:]
    if arities.get(ptype) != len(values) or not line.isprintable():
        return None
    for value in values:
        if (
            not value
            or len(value) > MAX_VALUE_LENGTH
            or value[0] in _QUOTES
            or value[-1] in _QUOTES
        ):
            return None
    return PolicyRow(intern(ptype), tuple(map(intern, values)))


def split_line(line: str) -> list[str]:
    """Split on top-level commas, exactly as pycasbin does, but refuse unbalanced brackets."""
    stack: list[str] = []
    tokens: list[str] = []
    start = 0
    for match in _TOKENS.finditer(line):
        char = match.group()
        if char in "([":
            stack.append(char)
        elif char in ")]":
            if not stack or stack.pop() != _CLOSING[char]:
                raise ValueError(f"unbalanced {char!r}")
        elif not stack:
            tokens.append(line[start : match.start()].strip())
            start = match.end()
    if stack:
        raise ValueError(f"unclosed {stack[-1]!r}")
    tokens.append(line[start:].strip())
    return tokens


def _check_split_quote(values: Sequence[str]) -> None:
    """Refuse a quoted value cut by a top-level comma: pycasbin reads ``"a, b"`` as the two
    values ``"a`` and ``b"``, a rule nobody wrote (Go Casbin and spreadsheets read one)."""
    opened: dict[str, int] = {}
    for index, value in enumerate(values):
        for quote in _QUOTES:
            if value.count(quote) % 2 == 0:
                continue
            if quote in opened and value.endswith(quote):
                raise ValueError(
                    f"values {opened[quote] + 1} to {index + 1} are one quoted value split at "
                    "a comma; Casbin's CSV format has no quoting"
                )
            if value.startswith(quote):
                opened.setdefault(quote, index)


def check_row(ptype: str, values: Iterable[str], arities: Mapping[str, int]) -> PolicyRow:
    """Validate one row; ``ValueError`` says what is wrong with it."""
    if ptype not in arities:
        shown = repr(ptype[:40]) + ("..." if len(ptype) > 40 else "")
        raise ValueError(f"unknown policy type {shown} (the model defines {sorted(arities)})")
    row = tuple(values)
    if all(isinstance(value, str) for value in row):
        _check_split_quote(row)  # first: it explains the extra value the split made
    if len(row) != arities[ptype]:
        raise ValueError(f"{ptype!r} rows take {arities[ptype]} values, this one has {len(row)}")
    for index, value in enumerate(row):
        if not isinstance(value, str) or not value:
            raise ValueError(f"value {index + 1} is empty (a stray separator?)")
        if len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"value {index + 1} is longer than {MAX_VALUE_LENGTH} characters")
        if not value.isprintable():
            raise ValueError(f"value {index + 1} contains a control character")
        if value != value.strip():
            raise ValueError(f"value {index + 1} has leading or trailing spaces")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
            raise ValueError(f"value {index + 1} is quoted; Casbin's CSV format has no quoting")
        if _BRACKETS.search(value):
            # A bracket left open would swallow the separators after it when the line is read
            # back (``report(2024`` makes the rest of the line one value): writing must refuse
            # exactly what reading refuses.
            try:
                split_line(value)
            except ValueError as error:
                raise ValueError(f"value {index + 1} has unbalanced brackets ({error})") from None
        if "," in value and len(split_line(value)) != 1:
            raise ValueError(f"value {index + 1} contains a comma outside brackets")
    return PolicyRow(intern(ptype), tuple(map(intern, row)))


def format_line(row: PolicyRow) -> str:
    """The CSV line of a row checked by :func:`check_row`; :func:`parse_policy` reads it back as
    the same row: writing and reading share one grammar (every value bracket-balanced, no
    quoting, no comma outside brackets)."""
    return ", ".join((row.ptype, *row.values))


#: first characters that make a spreadsheet run a cell as a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@")


def formula_rows(rows: Iterable[PolicyRow]) -> list[PolicyRow]:
    """The rows holding a value a spreadsheet would run as a formula.

    They are written as they are (a Casbin policy has no quoting to neutralise them, and a
    prefixed value would be another rule); the CLI warns about them instead.
    """
    return [row for row in rows if any(value.startswith(FORMULA_STARTS) for value in row.values)]
