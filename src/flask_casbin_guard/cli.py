"""``flask guard ...``: inspect routes and policies, check decisions, make tokens."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from flask import current_app
from flask.cli import AppGroup

from .authn.presence import absent, needed_schemes
from .authz.decide import request_values
from .authz.declarations import parse_declaration
from .authz.statics import is_static_endpoint
from .classviews import compile_endpoint, uncovered_methods
from .config import GuardSettings
from .errors import ConfigurationError, GuardError, LoginUnavailable
from .loading import diagnose_policy
from .pipeline import STATE_KEY, GuardedRoute, route_of
from .store.csv import format_line, formula_rows

if TYPE_CHECKING:
    from .policies import PolicyManager
    from .state import AppState

T = TypeVar("T")

guard_cli = AppGroup("guard", help="Inspect and manage the Casbin guard.")
policy_cli = AppGroup("policy", help="Read and validate the policy.")
role_cli = AppGroup("role", help="Inspect role assignments.")
guard_cli.add_command(policy_cli)
guard_cli.add_command(role_cli)

DENY_STATUS = 3  # exit status of ``guard check`` for a denial (0 is allow, 1 an error)
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
    """List every rule with its methods, schemes and declaration.

    Exits with status 1 when an endpoint or a class-based view's method answers 403 for want of
    a declaration, or an ``authn=`` names a scheme GUARD_AUTH does not enable: CI can gate on it.
    """
    state = _state()
    settings = state.settings
    problems = uncovered = 0
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        methods = ",".join(sorted(rule.methods or ()))
        view = current_app.view_functions.get(rule.endpoint)
        route = route_of(view) or _declared_later(state, rule.endpoint, rule.rule, view)
        if route is not None:
            text, auth = route.declaration.text, _schemes(settings.auth, route)
            automatic = getattr(rule, "provide_automatic_options", False)
            missing = uncovered_methods(route, rule.methods or (), automatic)
            if missing:  # a class-based view's undeclared methods
                text += f"; UNCOVERED: {','.join(missing)} answer{'s' * (len(missing) == 1)} 403"
                uncovered += 1
        elif is_static_endpoint(current_app, rule.endpoint, state.static_view):
            closed = "CLOSED: answers 403 (GUARD_OPEN_STATIC is false)"
            text = "OPEN (static)" if settings.open_static else closed
            auth = "-"
        elif settings.default_authorize is not None and view is not None:
            try:
                default = parse_declaration(settings.default_authorize, rule.endpoint)
            except GuardError as error:
                raise click.ClickException(str(error)) from None
            text = f"{settings.default_authorize!r} (GUARD_DEFAULT_AUTHORIZE)"
            auth = (",".join(settings.auth) or "-") if default.needs_user else "-"
        else:
            # The before_request hook refuses an endpoint without a view whatever the default.
            text, auth = "UNCOVERED: answers 403", "-"
            uncovered += 1
        problems += auth.startswith("NOT ENABLED")
        click.echo(f"{rule.rule}  [{methods}]  {rule.endpoint}  auth={auth}  authorize={text}")
    if uncovered:
        click.echo(f"{uncovered} endpoint(s) not covered by declarations in full", err=True)
    if problems:
        click.echo(f"{problems} route(s) name schemes GUARD_AUTH does not enable", err=True)
    if uncovered or problems:
        sys.exit(1)


def _schemes(enabled: tuple[str, ...], route: GuardedRoute) -> str:
    """The schemes a route really tries, in GUARD_AUTH's order (its ``authn=`` narrows them)."""
    if absent(route.view, enabled):  # not there to serve: no scheme is missing
        return "ABSENT (404) without " + ",".join(sorted(needed_schemes(route.view)))
    if not route.declaration.needs_user:
        return "-"
    if route.authn is None:
        return ",".join(enabled) or "-"
    missing = sorted(route.authn - set(enabled))
    if missing:
        return "NOT ENABLED: " + ",".join(missing)
    return ",".join(name for name in enabled if name in route.authn)


def _declared_later(state: AppState, endpoint: str, rule: str, view: Any) -> GuardedRoute | None:
    """A class-based view or a method declared in a class body (compiled at the first request)."""
    if view is None:
        return None
    try:
        return route_of(compile_endpoint(view, endpoint, rule, resolver=state.guard, default=None))
    except ConfigurationError:
        return None  # reported by guard.validate() and the first request


@guard_cli.command("check")
@click.argument("user")
@click.argument("obj")
@click.argument("act")
@click.option("--domain", help="The tenant, for models with domains.")
@click.option("--explain", is_flag=True, help="Print the policy rule that decided.")
def check_command(user: str, obj: str, act: str, domain: str | None, explain: bool) -> None:
    """Decide (USER, OBJ, ACT); exit status 0 allow, 3 deny."""
    engine = _state().holder.engine
    try:
        allowed, rule = engine.explain(*request_values(engine, user, domain, obj, act))
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
    """Load the model and policy from their sources; name every row that stops it loading."""
    found: AppState | None = current_app.extensions.get(STATE_KEY)
    if found is None:
        raise click.ClickException(f"app {current_app.name!r} has no CasbinGuard")
    try:
        settings = GuardSettings.from_mapping(found.config, found.guard.options)
    except GuardError as error:
        raise click.ClickException(str(error)) from None
    functions = found.guard.functions
    _, problems = diagnose_policy(settings, found.root_path, found.instance_path, functions)
    for problem in problems:
        click.echo(f"Error: {problem}", err=True)
    if problems:
        kept = "running processes keep their last good policy"
        raise click.ClickException(f"{len(problems)} problem(s): policy not loadable ({kept})")
    state = _state()
    try:
        state.reload_policy()
    except GuardError as error:
        raise click.ClickException(str(error)) from None
    engine = state.holder.engine
    click.echo(f"ok: {len(engine.rows)} rule(s), request ({', '.join(engine.request_tokens)})")
    click.echo("engine: indexed" if engine.fast else f"engine: pycasbin scan ({engine.reason})")


@policy_cli.command("add")
@click.argument("ptype")
@click.argument("values", nargs=-1, required=True)
def policy_add_command(ptype: str, values: tuple[str, ...]) -> None:
    """Add a rule: ``policy add p alice store:1 manager``."""
    added = _change(lambda policies: policies.add(ptype, *values))
    click.echo("added" if added else "already present")


@policy_cli.command("remove")
@click.argument("ptype")
@click.argument("values", nargs=-1, required=True)
def policy_remove_command(ptype: str, values: tuple[str, ...]) -> None:
    """Remove exactly one rule: ``policy remove g alice employee``."""
    removed = _change(lambda policies: policies.remove(ptype, *values))
    click.echo("removed" if removed else "not present")
    if not removed:
        sys.exit(1)


@policy_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace the whole policy with the file's.")
def policy_import_command(path: str, replace: bool) -> None:
    """Load a policy CSV, all or nothing (streamed in batches into databases)."""
    # Only to size the progress bar: a bad byte is for the import to report, with its line.
    with open(path, encoding="utf-8", errors="replace") as stream:
        total = sum(1 for line in stream if line.strip() and not line.lstrip().startswith("#"))
    with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
        done = [0]

        def progress(count: int) -> None:
            bar.update(count - done[0])
            done[0] = count

        added = _change(lambda policies: policies.import_csv(path, replace, progress))
    click.echo(f"{added} rule(s) added")


@policy_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
def policy_export_command(path: str) -> None:
    """Write the policy to a CSV file (``-``: standard output), values as they are."""
    rows = _state().holder.engine.rows
    if path == "-":
        for row in rows:
            click.echo(format_line(row))
        count = len(rows)
    else:
        count = _change(lambda policies: policies.export_csv(path))
    risky = formula_rows(rows)
    if risky:
        # Kept as they are: the file must import back as the same rules, and Casbin's format
        # has no quoting that would neutralise them. Said here, where the file is made.
        click.echo(
            f"warning: {len(risky)} rule(s) hold a value starting with =, +, - or @, which a "
            f"spreadsheet would run as a formula (first: {format_line(risky[0])!r}); open the "
            "file as text, not in a spreadsheet",
            err=True,
        )
    click.echo(f"{count} rule(s) written to {path}", err=path == "-")


@role_cli.command("add")
@click.argument("user")
@click.argument("role")
@click.option("--domain", help="The tenant, for models with domains.")
def role_add_command(user: str, role: str, domain: str | None) -> None:
    """Give USER the role ROLE."""
    added = _change(lambda policies: policies.add_role(user, role, domain))
    click.echo("added" if added else "already present")


@role_cli.command("remove")
@click.argument("user")
@click.argument("role")
@click.option("--domain", help="The tenant, for models with domains.")
def role_remove_command(user: str, role: str, domain: str | None) -> None:
    """Take the role ROLE from USER."""
    removed = _change(lambda policies: policies.remove_role(user, role, domain))
    click.echo("removed" if removed else "not present")
    if not removed:
        sys.exit(1)


@role_cli.command("list")
@click.argument("user", required=False)
@click.option("--domain", help="The tenant, for models with domains.")
def role_list_command(user: str | None, domain: str | None) -> None:
    """List role assignments, or the roles USER holds (transitively)."""
    policies = _state().policies
    if user is None:
        for rule in policies.list("g"):
            click.echo(", ".join(rule[1:]))
        return
    for role in policies.roles_for(user, domain):
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
    click.echo(_state().guard.hash_password(_password(password_stdin)))


user_cli = AppGroup("user", help="Manage users of the built-in user store.")
apikey_cli = AppGroup("apikey", help="Manage API keys of the built-in user store.")
guard_cli.add_command(user_cli)
guard_cli.add_command(apikey_cli)


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_cli.command("create")
@click.argument("login")
@click.option("--role", "roles", multiple=True, help="A role to give (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create_command(login: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Create a user (with GUARD_DEFAULT_ROLES and the --role ones)."""
    password = _password(password_stdin)
    _account(lambda guard: guard.create_user(login, password, roles=roles))
    click.echo(f"created {login}")


@user_cli.command("passwd")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_passwd_command(login: str, password_stdin: bool) -> None:
    """Set a new password (earlier sessions and tokens stop working)."""
    password = _password(password_stdin)
    _account(lambda guard: guard.set_password(login, password))
    click.echo(f"password changed for {login}")


@user_cli.command("disable")
@click.argument("login")
def user_disable_command(login: str) -> None:
    """Disable a user: their sessions, tokens and keys are refused from the next request."""
    _account(lambda guard: guard.set_active(login, False))
    click.echo(f"disabled {login}")


@user_cli.command("enable")
@click.argument("login")
def user_enable_command(login: str) -> None:
    """Enable a disabled user again."""
    _account(lambda guard: guard.set_active(login, True))
    click.echo(f"enabled {login}")


@user_cli.command("list")
def user_list_command() -> None:
    """List users (never their password hashes)."""
    for user in _account(lambda guard: guard.users.list()):
        state = "active" if user.active else "disabled"
        click.echo(f"{user.login}  {state}  created {user.created_at:%Y-%m-%d %H:%M}")


@apikey_cli.command("create")
@click.argument("login")
@click.option("--name", help="What the key is for.")
def apikey_create_command(login: str, name: str | None) -> None:
    """Create an API key for LOGIN and print it: it is shown this once."""
    click.echo(_account(lambda guard: guard.create_api_key(login, name)))


@apikey_cli.command("list")
@click.argument("login", required=False)
def apikey_list_command(login: str | None) -> None:
    """List API keys (ids only: the keys themselves cannot be shown again)."""
    for key in _account(lambda guard: guard.users.list_api_keys(login)):
        state = "revoked" if key.revoked else "active"
        click.echo(f"{key.key_id}  {key.login}  {state}  {key.name or ''}".rstrip())


@apikey_cli.command("revoke")
@click.argument("key_id")
def apikey_revoke_command(key_id: str) -> None:
    """Revoke an API key by its id."""
    if not _account(lambda guard: guard.users.revoke_api_key(key_id)):
        raise click.ClickException(f"no API key {key_id!r}")
    click.echo(f"revoked {key_id}")


def _account(action: Callable[[Any], T]) -> T:
    """Run ``action(guard)``; its errors (bad input included) become a clean CLI error."""
    try:
        return action(_state().guard)
    except LoginUnavailable as error:
        # The administrator sees the rule to review; registration answers without it.
        detail = f"{error} (rule: {error.rule})" if error.rule else str(error)
        raise click.ClickException(detail) from None
    except (GuardError, ValueError) as error:
        raise click.ClickException(str(error)) from None


def _change(action: Callable[[PolicyManager], T]) -> T:
    return _account(lambda guard: action(guard.policies))


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r}: use a number and s, m, h or d (e.g. 1h)")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
