"""What the policy manager needs from a store, whether a CSV file or a database."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .csv import PolicyRow


@dataclass(frozen=True, slots=True)
class Change:
    """What one write does to the stored rows, as decided inside its transaction."""

    #: rows to store, in order (none of them stored yet)
    added: tuple[PolicyRow, ...] = ()
    #: rows to delete, every stored copy
    removed: frozenset[PolicyRow] = frozenset()
    #: delete every stored row first (``added`` is then the whole policy)
    replace: bool = False

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.replace)


#: ``(version, load) -> change``: decides a write from the store's state when the writers' lock
#: is held. ``version`` is the store's version at that moment; ``load()`` returns its rows, for a
#: caller whose copy is not of that version. Raising aborts the write.
Planner = Callable[[int, Callable[[], list[PolicyRow]]], Change]


class PolicyStore(Protocol):
    """Rows in, rows out; every write validated first and all-or-nothing."""

    #: where the rows live, safe to show (passwords masked)
    url: str

    def version(self) -> int:
        """Changes whenever the stored rows change (a counter, or a content hash)."""
        ...

    def load_versioned(
        self, arities: Mapping[str, int] | None = None
    ) -> tuple[int, list[PolicyRow]]: ...

    def export(self) -> list[PolicyRow]: ...

    def diagnose(self, arities: Mapping[str, int]) -> tuple[list[PolicyRow], list[str]]:
        """The valid rows and one line per invalid row, naming where it is."""
        ...

    def add(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]: ...

    def remove(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]: ...

    def replace_all(self, rows: Iterable[PolicyRow]) -> int: ...

    def write(
        self, plan: Planner, progress: Callable[[int], object] | None = None
    ) -> tuple[int, int]:
        """Run ``plan`` with writers serialized, then make its change: all of it or nothing.

        :return: the version the plan saw and the version after the write (the same when the
            change was empty: nothing is written then).
        """
        ...

    def import_rows(
        self,
        rows: Iterable[PolicyRow],
        batch_size: int = 5000,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> int: ...

    def close(self) -> None: ...
