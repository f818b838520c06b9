"""``guard.policies``: read and change the policy of one app.

A change is decided inside the store's write transaction, with every other writer (thread or
process) locked out: against the stored rows as they are then, not against this process's copy,
which may lag other processes by a watcher interval. The whole policy the change leads to is
built and checked (arity, separators, role cycles and depth) before the transaction commits, so
two changes each valid alone can never commit a policy nobody can load. Then the new engine is
swapped in and other processes are told. A failure at any step leaves the store and this process
on the previous policy.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .authz.engine import DECISION_CACHE_BYTES, DECISION_CACHE_SIZE, EngineHolder, PolicyEngine
from .errors import GuardError, PolicyError, PolicyRejected
from .store.base import Change, PolicyStore
from .store.csv import PolicyRow, check_row, read_policy_file
from .store.csvstore import write_policy_file

log = logging.getLogger("flask_casbin_guard")

#: ``version -> None``: announces a committed change to other processes
Notifier = Callable[[int], None]
#: ``current rows -> (change, the rows after it)``: one write, decided from the current rows
Decision = Callable[[Sequence[PolicyRow]], tuple[Change, list[PolicyRow]]]


@dataclass(frozen=True, slots=True)
class Written:
    """What one write did: how many rules it changed, and at which store versions."""

    #: rules added plus rules removed
    count: int
    #: the store version the write was decided against (``None`` without a store)
    seen: int | None
    #: the version it committed; equal to ``seen`` when it changed nothing
    version: int | None


class PolicyManager:
    """The policy of one app: what ``guard.policies`` and the CLI work on."""

    def __init__(
        self,
        model_text: str,
        source: str,
        store: PolicyStore | None,
        holder: EngineHolder,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        cache_size: int = DECISION_CACHE_SIZE,
        cache_bytes: int = DECISION_CACHE_BYTES,
    ) -> None:
        self.model_text, self.source, self.store = model_text, source, store
        self.cache_size, self.cache_bytes = cache_size, cache_bytes
        self.holder = holder
        self.functions = dict(functions or {})
        self.arities = holder.engine.arities
        #: called with the store's version after each committed change
        self.notify: Notifier | None = None
        #: the store version the current engine was built from
        self.version: int | None = None
        self._lock = threading.RLock()

    # -- reading ------------------------------------------------------------------------------
    def list(self, ptype: str | None = None) -> list[tuple[str, ...]]:
        """Every rule as ``(ptype, *values)``, optionally of one ptype."""
        return [(row.ptype, *row.values) for row in self.holder.engine.policy(ptype)]

    def roles_for(self, user: str, domain: str | None = None) -> builtins.list[str]:
        """Roles ``user`` holds through ``g`` rows, transitively (in ``domain`` for domains)."""
        # ``list`` is a method of this class: the builtin is spelled out in its annotations.
        links: dict[str, builtins.list[str]] = {}
        for row in self.holder.engine.policy("g"):
            if row.values[2:3] == ((domain,) if domain is not None else ()):
                links.setdefault(row.values[0], []).append(row.values[1])
        found: builtins.list[str] = []
        frontier = list(links.get(user, ()))
        while frontier:
            role = frontier.pop(0)
            if role not in found and role != user:
                found.append(role)
                frontier.extend(links.get(role, ()))
        return found

    def naming(self, name: str) -> PolicyRow | None:
        """The first rule that gives ``name`` a meaning for Casbin as a subject: any value of a
        role row (``g``, ``g2``…: member, role, domain), or the subject (first value) of a
        permission row. ``None`` when no rule names it."""
        for row in self.holder.engine.rows:
            if name in row.values if row.ptype.startswith("g") else row.values[0] == name:
                return row
        return None

    # -- changing -----------------------------------------------------------------------------
    def add(self, ptype: str, *values: str) -> bool:
        """Add one rule; ``False`` when it was already there."""
        return bool(self.change(added=[PolicyRow(ptype, tuple(values))]))

    def remove(self, ptype: str, *values: str) -> bool:
        """Remove exactly one rule; ``False`` when it was not there."""
        return bool(self.change(removed=[PolicyRow(ptype, tuple(values))]))

    def add_role(self, user: str, role: str, domain: str | None = None) -> bool:
        return self.add("g", *self._link(user, role, domain))

    def remove_role(self, user: str, role: str, domain: str | None = None) -> bool:
        return self.remove("g", *self._link(user, role, domain))

    def change(self, added: Iterable[PolicyRow] = (), removed: Iterable[PolicyRow] = ()) -> int:
        """Apply rows to add and rows to remove together; return how many rules changed."""
        return self.write(added, removed).count

    def write(self, added: Iterable[PolicyRow] = (), removed: Iterable[PolicyRow] = ()) -> Written:
        """:meth:`change`, saying also which store versions the write saw and committed.

        :raises PolicyRejected: an invalid rule, or a policy the change would make unloadable
            (its ``version`` says against which stored policy).
        :raises PolicyError: the store failed or holds an invalid policy.
        """
        plus = list(dict.fromkeys(self._check(row) for row in added))
        minus = frozenset(self._check(row) for row in removed)

        def decide(rows: Sequence[PolicyRow]) -> tuple[Change, list[PolicyRow]]:
            present = set(rows)
            new = tuple(row for row in plus if row not in present)
            gone = minus & present
            candidate = [row for row in rows if row not in gone] if gone else list(rows)
            return Change(added=new, removed=gone), candidate + list(new)

        return self._write(decide)

    def import_csv(
        self,
        path: str | Path,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """Load a policy CSV (all or nothing); return how many rules were added."""
        incoming = list(dict.fromkeys(read_policy_file(path, self.arities)))

        def decide(rows: Sequence[PolicyRow]) -> tuple[Change, list[PolicyRow]]:
            if replace:
                return Change(added=tuple(incoming), replace=True), incoming
            present = set(rows)
            new = tuple(row for row in incoming if row not in present)
            return Change(added=new), [*rows, *new]

        return self._write(decide, progress).count

    def export_csv(self, path: str | Path) -> int:
        """Write the policy to a CSV file (atomically); return the number of rules.

        Values are written as they are, so the file imports back as the same rules, even those
        a spreadsheet would run as formulas (see :func:`~.store.csv.formula_rows`).
        """
        return write_policy_file(path, self.holder.engine.rows, self.arities)

    def reload(self, force: bool = False) -> bool:
        """Rebuild from the store when its version changed (or ``force``); ``True`` if swapped."""
        if self.store is None:
            return False
        with self._lock:
            if not force and self.version is not None and self.store.version() == self.version:
                return False
            version, rows = self.store.load_versioned(self.arities)
            engine = self._engine(rows)
            self.holder.swap(engine)
            self.version = version
            return True

    def store_changed(self) -> None:
        """The store was written past this manager (an account deleted with its rules, in
        one transaction with the user): load it here and announce it to other processes."""
        if self.reload(force=True) and self.notify is not None and self.version is not None:
            self.notify(self.version)

    # -- internals ----------------------------------------------------------------------------
    def _engine(self, rows: builtins.list[PolicyRow]) -> PolicyEngine:
        # The current engine hands over what a change leaves as it was (see PolicyEngine).
        return PolicyEngine(
            self.model_text,
            rows,
            source=self.source,
            functions=self.functions,
            cache_size=self.cache_size,
            cache_bytes=self.cache_bytes,
            previous=self.holder.engine,
        )

    def rebuild(self) -> None:
        """Rebuild the engine from the current rows (after a matcher function changed)."""
        with self._lock:
            self.holder.swap(self._engine(list(self.holder.engine.rows)))

    def _write(self, decide: Decision, progress: Callable[[int], object] | None = None) -> Written:
        """Decide with the store's writers locked out, check the whole result, then commit."""
        with self._lock:
            if self.store is None:
                change, candidate = decide(self.holder.engine.rows)
                if change:
                    self.holder.swap(self._checked_engine(candidate, None, None))
                return Written(_count(change), None, None)
            outcome: list[tuple[Change, PolicyEngine | None]] = []

            def plan(version: int, load: Callable[[], list[PolicyRow]]) -> Change:
                # This process's rows are the stored ones only if nothing was written since
                # they were read: every write moves the version (writers bypassing the guard
                # must bump it too, or no process would ever see their rows).
                known = version == self.version
                rows = self.holder.engine.rows if known else load()
                change, candidate = decide(rows)
                stored = None if known else rows
                engine = self._checked_engine(candidate, version, stored) if change else None
                outcome.append((change, engine))
                return change

            seen, version = self.store.write(plan, progress)
            change, engine = outcome[-1]
            if engine is not None:
                self.holder.swap(engine)
                self.version = version
                if self.notify is not None:
                    self.notify(version)
            elif seen != self.version:
                self._catch_up()
            return Written(_count(change), seen, version)

    def _checked_engine(
        self,
        rows: builtins.list[PolicyRow],
        version: int | None,
        stored: Sequence[PolicyRow] | None,
    ) -> PolicyEngine:
        """The engine of ``rows``; refused as the change's fault unless ``stored`` (the rows
        read from the store, when they are not this process's own) fails by itself."""
        try:
            return self._engine(rows)
        except PolicyError as error:
            if stored is not None and _fails(lambda: self._engine(list(stored))):
                # Written by something that bypassed these checks: not the caller's fault.
                raise PolicyError(f"the stored policy cannot be loaded: {error}") from None
            raise PolicyRejected(f"the policy would not load: {error}", version=version) from None

    def _catch_up(self) -> None:
        # A write that changed nothing found this process behind the store: take the store's
        # policy now rather than at the watcher's next round.
        try:
            self.reload()
        except GuardError as error:
            log.warning("policy reload after a write failed, keeping the current one: %s", error)

    def _check(self, row: PolicyRow) -> PolicyRow:
        try:
            return check_row(row.ptype, row.values, self.arities)
        except ValueError as error:
            # repr, cut short: the values may hold newlines or megabytes (they are the problem).
            shown = ", ".join(repr(value)[:60] for value in (row.ptype, *row.values))
            raise PolicyRejected(f"invalid rule {shown}: {error}") from None

    def _link(self, user: str, role: str, domain: str | None) -> tuple[str, ...]:
        arity = self.arities.get("g")
        if arity is None:
            raise PolicyRejected("the Casbin model has no role definition 'g'")
        if (domain is None) != (arity == 2):
            needed = "a domain" if arity == 3 else "no domain"
            raise PolicyRejected(f"this model's roles take {needed}")
        return (user, role) if domain is None else (user, role, domain)


def _count(change: Change) -> int:
    return len(change.added) + len(change.removed)


def _fails(build: Callable[[], object]) -> bool:
    try:
        build()
    except PolicyError:
        return True
    return False
