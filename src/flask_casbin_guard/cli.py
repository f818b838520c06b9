"""``flask guard ...``: inspect routes and policies, check decisions, make tokens."""

from __future__ import annotations

import datetime as dt
import re
import sys
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import AppGroup

from .errors import GuardError
from .pipeline import STATE_KEY, route_of

if TYPE_CHECKING:
    from .state import AppState

guard_cli = AppGroup("guard", help="Inspect and manage the Casbin guard.")
policy_cli = AppGroup("policy", help="Read and validate the policy.")
role_cli = AppGroup("role", help="Inspect role assignments.")
guard_cli.add_command(policy_cli)
guard_cli.add_command(role_cli)

#: exit status of ``guard check`` for a denial (0 is allow, 1 an error)
DENY_STATUS = 3
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _state() -> AppState:
    state: AppState | None = current_app.extensions.get(STATE_KEY)
    if state is None:
        raise click.ClickException(f"app {current_app.name!r} has no CasbinGuard")
    try:
        state.prepare()
    except GuardError as error:
        raise click.ClickException(str(error)) from None
    return state


@guard_cli.command("routes")
def routes_command() -> None:
    """List every rule with its methods, schemes and declaration."""
    state = _state()
    settings = state.settings
    schemes = ",".join(settings.auth) or "-"
    uncovered = 0
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        methods = ",".join(sorted(rule.methods or ()))
        route = route_of(current_app.view_functions.get(rule.endpoint))
        if route is not None:
            declaration = route.declaration
            text = declaration.text
            auth = schemes if declaration.needs_user else "-"
        elif rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            text = "OPEN (static)" if settings.open_static else "UNCOVERED: 403 (static closed)"
            auth = "-"
        elif settings.default_authorize is not None:
            text, auth = f"{settings.default_authorize!r} (GUARD_DEFAULT_AUTHORIZE)", schemes
        else:
            text, auth = "UNCOVERED: answers 403", "-"
            uncovered += 1
        click.echo(f"{rule.rule}  [{methods}]  {rule.endpoint}  auth={auth}  authorize={text}")
    if uncovered:
        click.echo(f"{uncovered} endpoint(s) not covered by any declaration", err=True)


@guard_cli.command("check")
@click.argument("user")
@click.argument("obj")
@click.argument("act")
@click.option("--explain", is_flag=True, help="Print the policy rule that decided.")
def check_command(user: str, obj: str, act: str, explain: bool) -> None:
    """Decide (USER, OBJ, ACT); exit status 0 allow, 3 deny."""
    engine = _state().holder.engine
    try:
        allowed, rule = engine.explain(user, obj, act)
    except GuardError as error:
        raise click.ClickException(str(error)) from None
    click.echo("allow" if allowed else "deny")
    if explain:
        click.echo("rule: " + (", ".join(rule) if rule else "(no rule matched)"))
    sys.exit(0 if allowed else DENY_STATUS)


@policy_cli.command("list")
@click.option("--ptype", help="Only rows of this policy type (p, g, ...).")
def policy_list_command(ptype: str | None) -> None:
    """Print the policy in Casbin's CSV format."""
    for row in _state().holder.engine.policy(ptype):
        click.echo(", ".join((row.ptype, *row.values)))


@policy_cli.command("validate")
def policy_validate_command() -> None:
    """Load the model and policy from their sources and report the first problem."""
    state = _state()
    try:
        state.reload_policy()
    except GuardError as error:
        raise click.ClickException(str(error)) from None
    engine = state.holder.engine
    click.echo(f"ok: {len(engine.rows)} rule(s), request ({', '.join(engine.request_tokens)})")


@role_cli.command("list")
@click.argument("user", required=False)
def role_list_command(user: str | None) -> None:
    """List role assignments, or the roles USER holds (transitively)."""
    engine = _state().holder.engine
    for row in engine.policy("g"):
        if user is None:
            click.echo(", ".join(row.values))
    if user is not None:
        for role in sorted(engine.roles):
            if engine.has_role(user, role):
                click.echo(role)


@guard_cli.command("token")
@click.argument("login")
@click.option("--expires", default=None, help="Lifetime such as 30m, 1h or 2d.")
def token_command(login: str, expires: str | None) -> None:
    """Print a signed access token for LOGIN."""
    lifetime = _duration(expires) if expires else None
    try:
        click.echo(_state().bearer.create_token(login, lifetime, None))
    except GuardError as error:
        raise click.ClickException(str(error)) from None


@guard_cli.command("hash-password")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def hash_password_command(password_stdin: bool) -> None:
    """Print an argon2id hash of a password (prompted, never echoed)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    click.echo(_state().guard.hash_password(password))


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r}: use a number and s, m, h or d (e.g. 1h)")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
