"""Who made the request, as resolved by an authentication scheme."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    :param login: the user's login; the Casbin subject.
    :param scheme: name of the scheme that authenticated it (``"basic"``, ``"bearer"``...).
    :param claims: verified token claims, empty for password schemes.
    """

    login: str
    scheme: str
    claims: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


def is_safe_login(login: str, max_length: int = 255) -> bool:
    """A login we are willing to use as a subject: printable, bounded, no separators.

    Commas would split a policy row and control characters could forge log lines, so such
    logins are refused before they reach Casbin or a log record.
    """
    return (
        0 < len(login) <= max_length
        and login.isprintable()
        and "," not in login
        and login == login.strip()
    )
