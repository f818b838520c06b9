"""The oracle of ``bench/load.py``: what the acme app must answer under each policy state.

Independent of the library on purpose: the acme policy is small enough to decide by hand
(transitive ``g`` roles, exact ``p`` rows), so a bug in the guard's engine or its reloads cannot
hide behind the same bug in the checker.

A request is judged against every policy state that may have been in force while it was
served. State ``k`` (after the ``k``-th change) is committed at an unknown instant in
``(lo_k, hi_k]`` (bracketed by the harness's version reads) and reaches every worker at most
``bound`` seconds later; a worker never goes back. So an answer sent at ``s`` and received at
``r`` may reflect state ``k`` exactly when ``lo_k < r`` and ``s < hi_{k+1} + bound``.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

#: a policy row: ("g", "alice", "employee"), ("p", "auditor", "/reports", "GET")
Row = tuple[str, ...]
State = frozenset[Row]
USERS = ("alice", "bob", "carol", "dave")
STORE_NAMES = {"1": "Downtown", "2": "Harbour"}


@dataclass(frozen=True)
class Probe:
    """One kind of request of the mix: ``user`` None is anonymous."""

    method: str
    path: str
    user: str | None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path} as {self.user or 'anonymous'}"


#: every route of the mix, for every user and anonymous
PROBES: tuple[Probe, ...] = tuple(
    Probe(method, path, user)
    for user in (*USERS, None)
    for method, path in (
        ("GET", "/"),
        ("GET", "/whoami"),
        ("GET", "/store"),
        ("POST", "/store/1"),
        ("POST", "/store/2"),
        ("GET", "/reports"),
    )
)
#: the JSON body of every POST of the mix
POST_BODY = {"product": "apple", "quantity": 1}

#: the changes the harness toggles: each flips some allow to deny and some deny to allow
TOGGLES: tuple[Row, ...] = (
    ("g", "carol", "auditor"),  # carol's /reports: allow <-> deny
    ("g", "dave", "employee"),  # dave's /store; and /reports while the employee grant is on
    ("g", "bob", "manager_store_1"),  # bob's POST /store/1
    ("p", "dave", "store:2", "manager"),  # dave's POST /store/2 (a direct object permission)
    ("p", "employee", "/reports", "GET"),  # every employee's /reports, through the role
    ("g", "alice", "employee"),  # alice's /store (allow -> deny first)
)


def parse_rows(text: str) -> State:
    """Rows from Casbin CSV (``flask guard policy list``): comments and blanks skipped."""
    rows = set()
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.add(tuple(value.strip() for value in line.split(",")))
    return frozenset(rows)


def roles(state: State, user: str) -> set[str]:
    """``user`` and every role it holds through ``g`` rows, transitively."""
    held, todo = {user}, [user]
    while todo:
        subject = todo.pop()
        for row in state:
            if row[0] == "g" and row[1] == subject and row[2] not in held:
                held.add(row[2])
                todo.append(row[2])
    return held


def permitted(state: State, user: str, obj: str, act: str) -> bool:
    subjects = roles(state, user)
    return any(row[0] == "p" and row[1] in subjects and row[2:] == (obj, act) for row in state)


def expected_status(state: State, probe: Probe) -> int:
    """The status the acme app must give ``probe`` under ``state``."""
    user, path = probe.user, probe.path
    if path == "/":
        return 200
    if user is None:
        return 401
    if path == "/whoami":
        allowed = True
    elif path == "/store":
        allowed = "employee" in roles(state, user)
    elif path.startswith("/store/"):
        allowed = permitted(state, user, f"store:{path.rsplit('/', 1)[1]}", "manager")
    else:
        allowed = permitted(state, user, path, probe.method)
    return 200 if allowed else 403


def body_ok(probe: Probe, status: int, text: str) -> bool:
    """Whether the body is what the route gives with ``status`` (identity included)."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if status in (401, 403):
        error = "unauthorized" if status == 401 else "forbidden"
        return body.get("error") == error and body.get("status") == status
    if probe.path == "/":
        return body == {"app": "acme", "stores": 2}
    if probe.path == "/whoami":
        return body == {"user": probe.user}
    if probe.path == "/store":
        return body == {"stores": STORE_NAMES, "user": probe.user}
    if probe.path.startswith("/store/"):
        sid = int(probe.path.rsplit("/", 1)[1])
        quantity = body.get("quantity")
        stocked = isinstance(quantity, int) and quantity > 0
        return body.get("store") == sid and body.get("product") == "apple" and stocked
    return isinstance(body.get("units"), int) and body.get("stores") == 2


@dataclass
class Timeline:
    """The policy states in commit order and, for each change, its commit bracket ``(lo, hi]``.

    ``states[k]`` lists what state ``k`` may be: one state, unless the version reads skipped
    over commits (two in the same bracket), whose order is then unknown.
    """

    states: list[list[State]]
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)

    def advance(self, rows: State, steps: int, lo: float, hi: float) -> None:
        """Record ``steps`` commits bracketed in ``(lo, hi]`` that led to ``rows``.

        Every change adds or removes one row, so the skipped states are the last known state
        with any ``1 .. steps - 1`` of the rows that differ toggled.
        """
        base = self.states[-1][0]
        differ = sorted(base ^ rows)
        if len(differ) != steps:
            raise ValueError(f"{steps} commits changed {len(differ)} rows: {differ}")
        for size in range(1, steps):
            between = [base ^ frozenset(toggled) for toggled in combinations(differ, size)]
            self._append(between, lo, hi)
        self._append([rows], lo, hi)

    def _append(self, states: list[State], lo: float, hi: float) -> None:
        self.states.append(states)
        self.lo.append(lo)
        self.hi.append(hi)

    def candidates(self, sent: float, received: float, bound: float) -> range:
        """Indexes of the states that may have decided a request served in ``[sent, received]``."""
        newest = bisect.bisect_left(self.lo, received)  # changes with lo < received
        # changes surely everywhere by ``sent``: hi + bound <= sent
        oldest = bisect.bisect_right(self.hi, sent - bound)
        return range(min(oldest, newest), newest + 1)


@dataclass
class Verdicts:
    """The oracle's counts. ``wrong`` + ``late`` + ``window`` + ``unambiguous`` = answers."""

    unambiguous: int = 0  #: every state possible within ``bound`` gives this answer
    window: int = 0  #: the possible states disagree; the answer is one of theirs
    window_old: int = 0  #: ... of which the answer was an older state's
    late: int = 0  #: explained only by a state older than ``bound`` (but within ``outer``)
    wrong: int = 0  #: no state within ``outer`` gives this answer (or a bad body)
    transport: int = 0  #: no HTTP answer at all (connection error, timeout)
    staleness: float = 0.0  #: longest an answer provably lagged a committed change (s)
    statuses: Counter[int] = field(default_factory=Counter)
    flips: dict[str, set[int]] = field(default_factory=dict)  #: statuses seen per probe
    examples: list[str] = field(default_factory=list)


def judge(
    records: Iterable[Sequence[object]], timeline: Timeline, bound: float, outer: float
) -> Verdicts:
    """Classify ``(probe index, sent, received, status, body)`` records against ``timeline``."""
    verdicts = Verdicts()
    memo: dict[tuple[int, int], frozenset[int]] = {}

    def statuses(k: int, index: int) -> frozenset[int]:
        if (k, index) not in memo:
            memo[k, index] = frozenset(
                expected_status(state, PROBES[index]) for state in timeline.states[k]
            )
        return memo[k, index]

    for index, sent, received, status, text in records:
        assert isinstance(index, int) and isinstance(status, int)
        assert isinstance(sent, float) and isinstance(received, float)
        probe = PROBES[index]
        verdicts.statuses[status] += 1
        if status == 0:
            verdicts.transport += 1
            continue
        verdicts.flips.setdefault(probe.name, set()).add(status)
        near = timeline.candidates(sent, received, bound)
        wide = timeline.candidates(sent, received, outer)
        matching = [k for k in wide if status in statuses(k, index)]
        if not matching or not body_ok(probe, status, str(text)):
            verdicts.wrong += 1
            if len(verdicts.examples) < 10:
                possible = sorted(set().union(*(statuses(k, index) for k in wide)))
                verdicts.examples.append(
                    f"{probe.name}: {status} {str(text)[:80]!r}, expected one of {possible} "
                    f"(states {wide.start}..{wide.stop - 1})"
                )
            continue
        newest = max(matching)
        if newest + 1 < len(timeline.states):  # it provably missed change newest + 1
            verdicts.staleness = max(verdicts.staleness, sent - timeline.hi[newest])
        if newest < near.start:
            verdicts.late += 1
        elif set().union(*(statuses(k, index) for k in near)) == {status}:
            verdicts.unambiguous += 1
        else:
            verdicts.window += 1
            verdicts.window_old += newest < near.stop - 1
    return verdicts
