"""An HTTP API to read and change the policy, as a blueprint the app registers itself.

    app.register_blueprint(admin_blueprint(authorize="policy_admin"), url_prefix="/guard")

It is protected by the declaration the app chooses (there is no default: an admin API must be
protected on purpose). JSON in and out; invalid rules answer 400, an unreachable store 503.

With a model that has domains (tenants), the declaration is checked in the request's tenant by
the route, and then again for every row the API writes, removes or lists and every domain it
answers about: each must lie in a domain where the caller holds the declaration too, else 403
(listings leave such rows out). A tenant admin therefore administers their tenant only, whatever
``domain`` a body names.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Request

from .app import Blueprint
from .authz.decide import Caller, check_route_level, request_values
from .authz.declarations import Declaration, parse_declaration
from .authz.engine import PolicyEngine
from .authz.tenants import domain_position, has_domains
from .errors import (
    AccessDenied,
    ConfigurationError,
    ParameterError,
    ParamIssue,
    PolicyError,
    PolicyRejected,
    PolicyUnavailable,
)
from .extension import CasbinGuard
from .identity import Identity
from .params.markers import Json
from .store.csv import check_row


def admin_blueprint(authorize: Any, *, name: str = "guard_admin", authn: Any = None) -> Blueprint:
    """The policy administration API, guarded by ``authorize`` (e.g. a role name)."""
    if authorize in (None, "OPEN"):
        raise ConfigurationError("the policy admin API needs a real authorization declaration")
    declaration = parse_declaration(authorize, f"{name} (admin_blueprint)")
    if declaration.objects:
        raise ConfigurationError(
            "the policy admin API takes a role, 'ROUTE' or 'AUTH' declaration: its routes have "
            "no object parameter"
        )
    bp = Blueprint(name, __name__)
    route = {"authorize": authorize, "authn": authn, "strict": True}

    def scope(guard: CasbinGuard, caller: Identity, req: Request) -> _Scope:
        # The subject, as the route check decides: the bare login may be another's role name.
        return _Scope(guard.policies.holder.engine, declaration, guard.subject(caller.login), req)

    @bp.get("/policies", **route)
    def list_policies(
        guard: CasbinGuard, caller: Identity, req: Request, ptype: str | None = None
    ) -> dict[str, Any]:
        rows = scope(guard, caller, req).visible(guard.policies.list(ptype))
        return {"rules": [list(rule) for rule in rows]}

    @bp.post("/policies", **route)
    def add_policy(
        guard: CasbinGuard,
        caller: Identity,
        req: Request,
        ptype: Annotated[str, Json()],
        values: Annotated[list[str], Json()],
    ) -> tuple[dict[str, Any], int]:
        scope(guard, caller, req).check_row(ptype, values)
        added = _apply(lambda: guard.policies.add(ptype, *values))
        return {"added": added}, 201 if added else 200

    @bp.delete("/policies", **route)
    def remove_policy(
        guard: CasbinGuard,
        caller: Identity,
        req: Request,
        ptype: Annotated[str, Json()],
        values: Annotated[list[str], Json()],
    ) -> dict[str, Any]:
        scope(guard, caller, req).check_row(ptype, values)
        return {"removed": _apply(lambda: guard.policies.remove(ptype, *values))}

    @bp.get("/roles/<user>", **route)
    def roles_of(
        guard: CasbinGuard, caller: Identity, req: Request, user: str, domain: str | None = None
    ) -> dict[str, Any]:
        scope(guard, caller, req).check_domain(domain)
        return {"user": user, "roles": guard.policies.roles_for(user, domain)}

    @bp.post("/roles", **route)
    def add_role(
        guard: CasbinGuard,
        caller: Identity,
        req: Request,
        user: Annotated[str, Json()],
        role: Annotated[str, Json()],
        domain: Annotated[str | None, Json()] = None,
    ) -> tuple[dict[str, Any], int]:
        scope(guard, caller, req).check_domain(domain)
        added = _apply(lambda: guard.policies.add_role(user, role, domain))
        return {"added": added}, 201 if added else 200

    @bp.delete("/roles", **route)
    def remove_role(
        guard: CasbinGuard,
        caller: Identity,
        req: Request,
        user: Annotated[str, Json()],
        role: Annotated[str, Json()],
        domain: Annotated[str | None, Json()] = None,
    ) -> dict[str, Any]:
        scope(guard, caller, req).check_domain(domain)
        return {"removed": _apply(lambda: guard.policies.remove_role(user, role, domain))}

    @bp.post("/check", **route)
    def check(
        guard: CasbinGuard,
        caller: Identity,
        req: Request,
        sub: Annotated[str, Json()],
        obj: Annotated[str, Json()],
        act: Annotated[str, Json()],
        domain: Annotated[str | None, Json()] = None,
    ) -> dict[str, Any]:
        scope(guard, caller, req).check_domain(domain)
        engine = guard.policies.holder.engine
        request = request_values(engine, sub, domain, obj, act)
        tokens = engine.request_tokens
        if len(request) != len(tokens):
            needed = "a domain" if len(tokens) == 4 else f"the values ({', '.join(tokens)})"
            raise ParameterError([ParamIssue("domain", "json", f"this model needs {needed}")])
        allowed, rule = _apply(lambda: guard.explain(*request))
        return {"allowed": allowed, "rule": list(rule)}

    return bp


def _apply(action: Any) -> Any:
    try:
        return action()
    except PolicyRejected as error:  # the input: its message names rules, nothing of the server
        raise ParameterError([ParamIssue("rule", "json", str(error), None)]) from None
    except PolicyError as error:
        # The store or the stored policy failed: the details (file paths, database names,
        # row ids) go to the log through the error's message; the body stays generic.
        raise PolicyUnavailable(str(error)) from None


class _Scope:
    """The domains a caller administers: those where it holds the admin declaration.

    Without domains in the model the route's own check covers everything, and this allows all.
    """

    def __init__(
        self, engine: PolicyEngine, declaration: Declaration, subject: str, req: Request
    ) -> None:
        self.engine, self.declaration, self.subject = engine, declaration, subject
        self.scoped = has_domains(engine)
        self._endpoint = req.endpoint or "admin API"
        self._rule = req.url_rule.rule if req.url_rule is not None else req.path
        self._method = req.method  # check_route_level decides HEAD as GET
        self._answers: dict[str | None, bool] = {}

    def administers(self, domain: str | None) -> bool:
        """Whether the declaration holds for the caller in ``domain`` (``None``: no domain)."""
        if not self.scoped:
            return True
        if domain is None:
            return False  # a row outside every tenant: not a tenant admin's
        if domain not in self._answers:
            self._answers[domain] = self._holds(domain)
        return self._answers[domain]

    def _holds(self, domain: str) -> bool:
        if self.declaration.route and len(self.engine.request_tokens) != 4:
            return False
        # The route's own check, in ``domain``: the same subject, and the domain where the
        # model's request definition puts it.
        caller = Caller(self.engine, self._endpoint, self.subject, domain)
        try:
            check_route_level(caller, self.declaration, self._rule, self._method)
        except AccessDenied:
            return False
        return True

    def domain_of(self, ptype: str, values: tuple[str, ...] | list[str]) -> str | None:
        position = domain_position(self.engine, ptype)
        return values[position] if position is not None and position < len(values) else None

    def check_domain(self, domain: str | None) -> None:
        """403 unless the caller administers ``domain`` (a domain model needs one: 400)."""
        if not self.scoped:
            return
        if domain is None:
            raise ParameterError([ParamIssue("domain", "json", "a domain (this model has them)")])
        if not self.administers(domain):
            raise AccessDenied(f"admin API: {self.subject!r} does not administer {domain!r}")

    def check_row(self, ptype: str, values: list[str]) -> None:
        """400 for an invalid row, then 403 unless it lies in a domain the caller administers."""
        if not self.scoped:
            return  # the manager validates it, as ever
        try:
            row = check_row(ptype, values, self.engine.arities)
        except ValueError as error:
            issue = ParamIssue("rule", "json", f"invalid rule: {error}")
            raise ParameterError([issue]) from None
        domain = self.domain_of(row.ptype, row.values)
        if not self.administers(domain):
            shown = "no domain" if domain is None else repr(domain)
            raise AccessDenied(f"admin API: {self.subject!r} does not administer {shown}")

    def visible(self, rules: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """The rules the caller may see: those in domains it administers."""
        if not self.scoped:
            return rules
        return [rule for rule in rules if self.administers(self.domain_of(rule[0], rule[1:]))]
