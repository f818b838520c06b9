"""Parse ``authorize=`` values into a frozen :class:`Declaration`, once, at registration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

OPEN, AUTH, CLOSE, ROUTE = "OPEN", "AUTH", "CLOSE", "ROUTE"
RESERVED = (OPEN, AUTH, CLOSE, ROUTE)


@dataclass(frozen=True, slots=True)
class ObjectPermission:
    """``(type, param, action)``: may the user act ``action`` on ``type`` number ``param``?"""

    type: str
    param: str
    action: str


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a route requires; every listed requirement must pass."""

    #: no authentication at all
    open: bool = False
    #: nobody may use the route
    close: bool = False
    #: roles the user must hold (Casbin ``g``, transitively)
    roles: tuple[str, ...] = ()
    #: Casbin decides on (user, rule template, method)
    route: bool = False
    #: checks on converted parameter values, made after binding
    objects: tuple[ObjectPermission, ...] = ()
    #: the declaration as written, for ``flask guard routes`` and logs
    text: str = ""

    @property
    def needs_user(self) -> bool:
        return not self.open and not self.close

    @property
    def params(self) -> frozenset[str]:
        return frozenset(o.param for o in self.objects)

    @property
    def uses_policy(self) -> bool:
        return bool(self.roles or self.route or self.objects)


def parse_declaration(spec: Any, endpoint: str) -> Declaration:
    """Turn an ``authorize=`` value into a :class:`Declaration`.

    :raises ConfigurationError: for an empty, malformed or contradictory declaration.
    """
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise ConfigurationError(f"endpoint {endpoint!r}: empty authorization declaration")
    roles: list[str] = []
    objects: list[ObjectPermission] = []
    flags: set[str] = set()
    for item in items:
        if isinstance(item, str):
            name = _word(item, endpoint, "declaration")
            if name in RESERVED:
                flags.add(name)
            else:
                roles.append(name)
        elif isinstance(item, tuple):
            objects.append(_object_permission(item, endpoint))
        else:
            raise ConfigurationError(
                f"endpoint {endpoint!r}: cannot use {item!r} as an authorization declaration "
                "(expected a string, a (type, param, action) tuple or a list of those)"
            )
    for alone in (OPEN, CLOSE):
        if alone in flags and len(items) > 1:
            raise ConfigurationError(
                f"endpoint {endpoint!r}: {alone!r} cannot be combined with other requirements"
            )
    return Declaration(
        open=OPEN in flags,
        close=CLOSE in flags,
        roles=tuple(dict.fromkeys(roles)),
        route=ROUTE in flags,
        objects=tuple(dict.fromkeys(objects)),
        text=repr(spec),
    )


def _word(value: str, endpoint: str, what: str) -> str:
    if not value or value != value.strip() or "," in value or not value.isprintable():
        raise ConfigurationError(f"endpoint {endpoint!r}: invalid {what} {value!r}")
    upper = value.upper()
    if what == "declaration" and upper in RESERVED and value != upper:
        # A lower-case "open" would silently become a role nobody holds: say so instead.
        raise ConfigurationError(f"endpoint {endpoint!r}: {value!r}: did you mean {upper!r}?")
    return value


def _object_permission(item: tuple[Any, ...], endpoint: str) -> ObjectPermission:
    if len(item) != 3 or not all(isinstance(part, str) for part in item):
        raise ConfigurationError(
            f"endpoint {endpoint!r}: object permission {item!r} must be (type, param, action); "
            "use a list for several requirements"
        )
    kind, param, action = item
    if not param.isidentifier():
        raise ConfigurationError(f"endpoint {endpoint!r}: {param!r} is not a parameter name")
    return ObjectPermission(
        _word(kind, endpoint, "object type"), param, _word(action, endpoint, "action")
    )
