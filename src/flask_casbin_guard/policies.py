"""``guard.policies``: read and change the policy of one app.

A change is checked by building the engine it leads to (arity, separators, role cycles and
depth) before anything is written; then it is written to the store in one transaction; then the
new engine is swapped in; then other processes are told. A failure at any step leaves both the
store and this process on the previous policy.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .authz.engine import DECISION_CACHE_SIZE, EngineHolder, PolicyEngine
from .errors import PolicyError
from .store.base import PolicyStore
from .store.csv import PolicyRow, check_row, read_policy_file
from .store.csvstore import CsvStore

#: ``version -> None``: announces a committed change to other processes
Notifier = Callable[[int], None]


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
    ) -> None:
        self.model_text, self.source, self.store = model_text, source, store
        self.cache_size = cache_size
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
        plus = [self._check(row) for row in added]
        minus = {self._check(row) for row in removed}
        with self._lock:
            rows = self.holder.engine.rows
            present = set(rows)
            new = [row for row in dict.fromkeys(plus) if row not in present]
            gone = minus & present
            if not new and not gone:
                return 0
            candidate = [row for row in rows if row not in gone] + new
            engine = self._engine(candidate)  # validates before anything is written
            if self.store is not None:
                if gone:
                    self.store.remove(gone)
                if new:
                    self.store.add(new)
            self._commit(engine)
            return len(new) + len(gone)

    def import_csv(
        self,
        path: str | Path,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> int:
        """Load a policy CSV (all or nothing); return how many rules were added."""
        incoming = read_policy_file(path, self.arities)
        with self._lock:
            rows = self.holder.engine.rows
            present = set() if replace else set(rows)
            new = [row for row in dict.fromkeys(incoming) if row not in present]
            candidate = list(dict.fromkeys(incoming)) if replace else [*rows, *new]
            engine = self._engine(candidate)
            if self.store is not None:
                self.store.import_rows(
                    candidate if replace else new, replace=replace, progress=progress
                )
            self._commit(engine)
        return len(new)

    def export_csv(self, path: str | Path) -> int:
        """Write the policy to a CSV file (atomically); return the number of rules."""
        rows = self.holder.engine.rows
        target = Path(path)
        target.write_text("")  # CsvStore rewrites it atomically below
        CsvStore(target, self.arities).replace_all(rows)
        return len(rows)

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

    # -- internals ----------------------------------------------------------------------------
    def _engine(self, rows: builtins.list[PolicyRow]) -> PolicyEngine:
        # The current engine hands over what a change leaves as it was (see PolicyEngine).
        return PolicyEngine(
            self.model_text,
            rows,
            source=self.source,
            functions=self.functions,
            cache_size=self.cache_size,
            previous=self.holder.engine,
        )

    def rebuild(self) -> None:
        """Rebuild the engine from the current rows (after a matcher function changed)."""
        with self._lock:
            self.holder.swap(self._engine(list(self.holder.engine.rows)))

    def _commit(self, engine: PolicyEngine) -> None:
        """Swap in ``engine`` — or the store's rows if another process wrote meanwhile."""
        if self.store is None:
            self.holder.swap(engine)
            return
        version, rows = self.store.load_versioned(self.arities)
        self.holder.swap(engine if rows == list(engine.rows) else self._engine(rows))
        self.version = version
        if self.notify is not None:
            self.notify(version)

    def _check(self, row: PolicyRow) -> PolicyRow:
        try:
            return check_row(row.ptype, row.values, self.arities)
        except ValueError as error:
            # repr, cut short: the values may hold newlines or megabytes (they are the problem).
            shown = ", ".join(repr(value)[:60] for value in (row.ptype, *row.values))
            raise PolicyError(f"invalid rule {shown}: {error}") from None

    def _link(self, user: str, role: str, domain: str | None) -> tuple[str, ...]:
        arity = self.arities.get("g")
        if arity is None:
            raise PolicyError("the Casbin model has no role definition 'g'")
        if (domain is None) != (arity == 2):
            needed = "a domain" if arity == 3 else "no domain"
            raise PolicyError(f"this model's roles take {needed}")
        return (user, role) if domain is None else (user, role, domain)
