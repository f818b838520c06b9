"""The current engine of one app, swapped whole (see :mod:`.engine`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import PolicyEngine


class EngineHolder:
    """The current engine of one app; replaced whole, never modified in place."""

    def __init__(self, engine: PolicyEngine) -> None:
        self._engine = engine
        self.generation = 0

    @property
    def engine(self) -> PolicyEngine:
        """The engine to use for one whole request."""
        return self._engine

    def swap(self, engine: PolicyEngine) -> None:
        """Make ``engine`` current; requests already running keep the one they took."""
        # One reference assignment: a request uses either the old or the new engine, whole.
        self._engine = engine
        self.generation += 1
