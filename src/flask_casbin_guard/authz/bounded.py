"""pycasbin's role managers, kept from storing every unknown name they are asked about.

Used by the engine's pycasbin fallback (:mod:`.engine`, which alone imports ``casbin`` and
hands the manager classes in); the exact classes only: subclasses may do anything.
"""

from __future__ import annotations

import functools
from typing import Any


def bound(manager: Any, role_manager: type[Any], domain_manager: type[Any]) -> None:
    """Stop a role manager from storing every unknown name it is asked about.

    ``RoleManager.has_link`` creates a ``Role`` for both names when absent, and
    ``DomainManager`` a whole role manager per unknown domain. A name (or domain) that is not
    there yet has no links, so the answer is just whether the names are equal: the wrapped
    methods return that without storing anything, and defer to pycasbin otherwise.
    """
    if type(manager) is role_manager and manager.matching_func is None:
        manager.has_link = functools.partial(_has_link, manager)
    elif type(manager) is domain_manager and manager.domain_matching_func is None:
        manager.has_link = functools.partial(_domain_has_link, manager)


def _has_link(manager: Any, name1: Any, name2: Any, *domain: Any) -> bool:
    if type(name1) is not str:
        return bool(type(manager).has_link(manager, name1, name2, *domain))
    user = manager.all_roles.get(name1)
    if user is None:
        return bool(name2 == name1)
    return bool(manager._has_link(name2, [user], manager.max_hierarchy_level))


def _domain_has_link(manager: Any, name1: Any, name2: Any, *domain: Any) -> bool:
    key = manager._get_domain(*domain)
    if type(name1) is not str:
        return bool(type(manager).has_link(manager, name1, name2, *domain))
    if key not in manager.rm_map and key not in manager.all_links:
        return bool(name2 == name1)
    # The per-domain manager compares names for equality, which creates nothing new.
    return _has_link(manager._get_role_manager(*domain), name1, name2)
