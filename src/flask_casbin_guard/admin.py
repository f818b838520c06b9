"""An HTTP API to read and change the policy, as a blueprint the app registers itself.

    app.register_blueprint(admin_blueprint(authorize="policy_admin"), url_prefix="/guard")

It is protected by the declaration the app chooses (there is no default: an admin API must be
protected on purpose). JSON in and out; invalid rules answer 400, an unreachable store 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from .app import Blueprint
from .errors import (
    ConfigurationError,
    ParameterError,
    ParamIssue,
    PolicyError,
    PolicyRejected,
    PolicyUnavailable,
)
from .extension import CasbinGuard
from .params.markers import Json


def admin_blueprint(authorize: Any, *, name: str = "guard_admin", authn: Any = None) -> Blueprint:
    """The policy administration API, guarded by ``authorize`` (e.g. a role name)."""
    if authorize in (None, "OPEN"):
        raise ConfigurationError("the policy admin API needs a real authorization declaration")
    bp = Blueprint(name, __name__)
    route = {"authorize": authorize, "authn": authn, "strict": True}

    @bp.get("/policies", **route)
    def list_policies(guard: CasbinGuard, ptype: str | None = None) -> dict[str, Any]:
        return {"rules": [list(rule) for rule in guard.policies.list(ptype)]}

    @bp.post("/policies", **route)
    def add_policy(
        guard: CasbinGuard, ptype: Annotated[str, Json()], values: Annotated[list[str], Json()]
    ) -> tuple[dict[str, Any], int]:
        added = _apply(lambda: guard.policies.add(ptype, *values))
        return {"added": added}, 201 if added else 200

    @bp.delete("/policies", **route)
    def remove_policy(
        guard: CasbinGuard, ptype: Annotated[str, Json()], values: Annotated[list[str], Json()]
    ) -> dict[str, Any]:
        return {"removed": _apply(lambda: guard.policies.remove(ptype, *values))}

    @bp.get("/roles/<user>", **route)
    def roles_of(guard: CasbinGuard, user: str, domain: str | None = None) -> dict[str, Any]:
        return {"user": user, "roles": guard.policies.roles_for(user, domain)}

    @bp.post("/roles", **route)
    def add_role(
        guard: CasbinGuard,
        user: Annotated[str, Json()],
        role: Annotated[str, Json()],
        domain: Annotated[str | None, Json()] = None,
    ) -> tuple[dict[str, Any], int]:
        added = _apply(lambda: guard.policies.add_role(user, role, domain))
        return {"added": added}, 201 if added else 200

    @bp.delete("/roles", **route)
    def remove_role(
        guard: CasbinGuard,
        user: Annotated[str, Json()],
        role: Annotated[str, Json()],
        domain: Annotated[str | None, Json()] = None,
    ) -> dict[str, Any]:
        return {"removed": _apply(lambda: guard.policies.remove_role(user, role, domain))}

    @bp.post("/check", **route)
    def check(
        guard: CasbinGuard,
        sub: Annotated[str, Json()],
        obj: Annotated[str, Json()],
        act: Annotated[str, Json()],
        domain: Annotated[str | None, Json()] = None,
    ) -> dict[str, Any]:
        request = (sub, domain, obj, act) if domain is not None else (sub, obj, act)
        tokens = guard.policies.holder.engine.request_tokens
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
