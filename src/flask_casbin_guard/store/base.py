"""What the policy manager needs from a store, whether a CSV file or a database."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from .csv import PolicyRow


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

    def add(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]: ...

    def remove(self, rows: Iterable[PolicyRow]) -> list[PolicyRow]: ...

    def replace_all(self, rows: Iterable[PolicyRow]) -> int: ...

    def import_rows(
        self,
        rows: Iterable[PolicyRow],
        batch_size: int = 5000,
        replace: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> int: ...

    def close(self) -> None: ...
