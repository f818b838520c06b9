"""Role graphs: the transitive closure of one ``g`` type, computed once per policy.

pycasbin answers ``g(user, role)`` with a breadth-first search over a role manager that creates a
``Role`` for every name it is asked about, known or not. A :class:`RoleGraph` precomputes, for
every name that appears as a member in a ``g`` row, the set of names it reaches, and answers
every other name from ``user == role`` without storing anything: memory depends on the policy,
never on the requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from ..errors import PolicyError

#: pycasbin's role managers stop searching after this many levels and silently deny.
MAX_ROLE_DEPTH = 10

_EMPTY: frozenset[str] = frozenset()


class RoleGraph:
    """The ``g`` links of one role type, closed transitively; immutable once built.

    :param links: ``(member, role)`` or ``(member, role, domain)`` rows, as the policy gives them.
    :param domains: whether the role definition has a domain (``g = _, _, _``); pycasbin then
        keeps one graph per domain, otherwise the domain of a ``g()`` call is ignored.
    :param max_level: pycasbin's ``max_hierarchy_level``; links further away are not followed.
    """

    def __init__(
        self,
        links: Iterable[Sequence[str]],
        *,
        domains: bool,
        max_level: int = MAX_ROLE_DEPTH,
    ) -> None:
        self.domains = domains
        graphs: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for values in links:
            graphs[values[2] if domains else ""][values[0]].append(values[1])
        # Members with the same roles share one set: thousands of users hold a few roles.
        shared: dict[frozenset[str], frozenset[str]] = {}
        #: domain -> member -> the other names it reaches
        self._closure: dict[str, dict[str, frozenset[str]]] = {}
        for domain, graph in graphs.items():
            closures = self._closure[domain] = {}
            for member, direct in graph.items():
                if graph.keys().isdisjoint(direct):  # the usual user -> role: nothing further
                    reached = frozenset(direct).difference((member,))
                else:
                    reached = _reach(member, graph, max_level)
                closures[member] = shared.setdefault(reached, reached)
        #: every name that is a member in some link, in any domain
        self.members: frozenset[str] = frozenset(
            member for closures in self._closure.values() for member in closures
        )

    def roles(self, user: str, domain: str = "") -> frozenset[str]:
        """The names other than ``user`` that ``g(user, name[, domain])`` holds for.

        An unknown user has none; nothing is stored for it.
        """
        closures = self._closure.get(domain if self.domains else "")
        if closures is None:
            return _EMPTY
        return closures.get(user, _EMPTY)

    def has_link(self, user: str, role: str, domain: str = "") -> bool:
        """pycasbin's ``has_link`` for string names: ``g(x, x)`` holds for any ``x``."""
        return user == role or role in self.roles(user, domain)


def _reach(start: str, graph: Mapping[str, list[str]], max_level: int) -> frozenset[str]:
    # Level by level, like pycasbin's _has_link: ``max_level`` frontiers, the start included,
    # so names at most ``max_level - 1`` links away. Cycles are harmless: seen names stop.
    seen = {start}
    frontier = [start]
    for _ in range(max_level - 1):
        following = []
        for name in frontier:
            for role in graph.get(name, ()):
                if role not in seen:
                    seen.add(role)
                    following.append(role)
        if not following:
            break
        frontier = following
    seen.discard(start)
    return frozenset(seen)


def check_role_depth(links: Iterable[Sequence[str]]) -> None:
    """Refuse cycles and chains deeper than pycasbin follows (it would deny silently)."""
    # One graph per domain (values beyond the first two): links never cross domains.
    graphs: dict[tuple[str, ...], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for values in links:
        graphs[tuple(values[2:])][values[0]].append(values[1])
    for domain, graph in graphs.items():
        _check_depth(graph, domain)


def _check_depth(graph: Mapping[str, list[str]], domain: tuple[str, ...] = ()) -> None:
    # Longest chain below each name, from the roles that hold no role upwards (Kahn's order);
    # names never reached that way sit on or above a cycle.
    members: dict[str, list[str]] = defaultdict(list)
    pending: dict[str, int] = {}
    for member, roles in graph.items():
        pending[member] = len(roles)
        for role in roles:
            members[role].append(member)
            pending.setdefault(role, 0)
    ready = [name for name, count in pending.items() if count == 0]
    depth = dict.fromkeys(ready, 0)
    while ready:
        name = ready.pop()
        below = depth[name] + 1
        for member in members.get(name, ()):
            if depth.get(member, -1) < below:
                depth[member] = below
                if below >= MAX_ROLE_DEPTH:
                    raise PolicyError(
                        f"role chain from {member!r} is {below} links deep; pycasbin follows at "
                        f"most {MAX_ROLE_DEPTH - 1} and would silently deny beyond that"
                    )
            pending[member] -= 1
            if pending[member] == 0:
                ready.append(member)
    stuck = [name for name, count in pending.items() if count]
    if stuck:
        name = stuck[0]
        seen: set[str] = set()

        def above(member: str) -> str:
            return next(role for role in graph[member] if pending[role])

        while name not in seen:  # walk up through stuck roles until one repeats
            seen.add(name)
            name = above(name)
        # The same walk from the repeated name goes round the cycle: its rows are the culprits.
        cycle: list[str] = []
        member = name
        while not cycle or member != name:
            cycle.append(", ".join(("g", member, above(member), *domain)))
            member = above(member)
        raise PolicyError(f"role cycle through {name!r} in the 'g' rows: {'; '.join(cycle)}")
