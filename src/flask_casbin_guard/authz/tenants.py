"""Which tenant (Casbin domain) a request is about, for models with domains.

``GUARD_TENANT`` says where it comes from: ``"path:org"`` (a rule variable), ``"header:X-Tenant"``
(only when configured: a header is whatever the client says, so the policy must grant per
tenant), ``"claim:tenant"`` (a verified token claim), or a callable
``(request, view_args, identity) -> str | None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from werkzeug.wrappers import Request

from ..errors import AccessDenied, ConfigurationError, ParameterError, ParamIssue
from ..identity import Identity, is_safe_login
from .engine import PolicyEngine

Resolver = Callable[[Request, Mapping[str, Any], Identity | None], "str | None"]
_SOURCES = ("path", "header", "claim")


class TenantResolver:
    """Resolves and checks the tenant of a request."""

    def __init__(self, spec: Any) -> None:
        if callable(spec):
            self._custom: Resolver | None = spec
            self.source, self.name = "callable", getattr(spec, "__name__", "resolver")
            return
        source, _, name = str(spec).partition(":") if isinstance(spec, str) else ("", "", "")
        if source not in _SOURCES or not name:
            raise ConfigurationError(
                f"GUARD_TENANT must be 'path:<variable>', 'header:<Name>', 'claim:<claim>' or a "
                f"callable, not {spec!r}"
            )
        self._custom, self.source, self.name = None, source, name

    def resolve(
        self, request: Request, view_args: Mapping[str, Any], identity: Identity | None
    ) -> str:
        """The tenant, checked.

        :raises ParameterError: a path variable or header is missing or unusable (400).
        :raises AccessDenied: no tenant from a claim or the callable (403).
        """
        if self._custom is not None:
            value = self._custom(request, view_args, identity)
        elif self.source == "path":
            value = view_args.get(self.name)
        elif self.source == "header":
            values = request.headers.getlist(self.name)
            value = values[0] if len(values) == 1 else None
        else:
            value = identity.claims.get(self.name) if identity is not None else None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _usable(value):
            if self.source in ("path", "header"):
                raise ParameterError([ParamIssue(self.name, self.source, "a tenant name", None)])
            raise AccessDenied(f"no usable tenant from the {self.source} {self.name!r}")
        return value


def _usable(value: str) -> bool:
    # The rules of a login, and no "::": pycasbin joins domain names with it, so a tenant
    # holding it could pass for another.
    return is_safe_login(value) and "::" not in value


def has_domains(engine: PolicyEngine) -> bool:
    """Whether the model has domains (tenants): a 4-value request or ``g = _, _, _``."""
    return len(engine.request_tokens) == 4 or engine.arities.get("g") == 3


def domain_position(engine: PolicyEngine, ptype: str) -> int | None:
    """Which value of a ``ptype`` row is its domain; ``None`` when it has none."""
    tokens = engine.policy_tokens.get(ptype)
    if tokens is None:  # a role type: g = _, _, _ holds its domain third
        return 2 if engine.arities.get(ptype) == 3 else None
    # The policy token named as the request's domain token (pycasbin's convention: "dom").
    name = engine.request_tokens[1] if len(engine.request_tokens) == 4 else "dom"
    return tokens.index(name) if name in tokens else None
