"""Build the enabled schemes from ``GUARD_AUTH``: built-in, registered, or from entry points."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from ..config import GuardSettings
from ..errors import ConfigurationError
from .apikey import ApiKeyScheme, KeyChecker
from .base import Scheme
from .basic import BasicScheme
from .bearer import BearerScheme
from .credentials import Rehasher
from .fake import FakeScheme
from .param import ParamScheme
from .passwords import PasswordHasher
from .ratelimit import FailureLimiter
from .remote_user import RemoteUserScheme
from .session import Session, SessionScheme
from .verified import VerifiedPasswords

#: entry-point group through which installed packages offer schemes
ENTRY_POINT_GROUP = "flask_casbin_guard.schemes"
PASSWORD_SCHEMES = frozenset({"basic", "param", "session", "apikey"})


def build_schemes(
    settings: GuardSettings,
    realm: str,
    *,
    bearer: BearerScheme | None,
    get_user_pass: Callable[[str], str | None],
    hasher: PasswordHasher,
    registered: Mapping[str, Scheme],
    testing: Callable[[], bool],
    rehash: Rehasher | None,
    limiter: FailureLimiter | None = None,
    session: Callable[[], Session] | None = None,
    api_keys: KeyChecker | None = None,
    verified: VerifiedPasswords | None = None,
    stamp: Callable[[str], float | None] | None = None,
) -> list[Scheme]:
    """The schemes of ``GUARD_AUTH``, in order; ``verified`` and ``stamp`` are Basic's
    remembered successes and the revocation stamps they are checked against.

    :raises ConfigurationError: for an unknown or misconfigured scheme.
    """
    if limiter is None:
        limiter = make_limiter(settings)
    schemes: list[Scheme] = []
    for name in settings.auth:
        if name in registered:
            schemes.append(registered[name])
        elif name == "basic":
            schemes.append(
                BasicScheme(
                    get_user_pass,
                    hasher,
                    realm,
                    limiter=limiter,
                    rehash=rehash,
                    max_length=settings.password_max_length,
                    verified=verified,
                    stamp=stamp,
                )
            )
        elif name == "param":
            schemes.append(
                ParamScheme(
                    get_user_pass,
                    hasher,
                    user_field=settings.param_user,
                    password_field=settings.param_password,
                    limiter=limiter,
                    rehash=rehash,
                    max_length=settings.password_max_length,
                )
            )
        elif name == "bearer" and bearer is not None:
            schemes.append(bearer)
        elif name == "remote_user":
            schemes.append(RemoteUserScheme(settings.trusted_proxies, settings.remote_user_header))
        elif name == "session":
            if session is None:
                raise ConfigurationError("the 'session' scheme needs the app's session")
            schemes.append(SessionScheme(session, settings.session_lifetime))
        elif name == "apikey":
            if api_keys is None:
                raise ConfigurationError(
                    "the 'apikey' scheme needs the built-in user store: a database GUARD_POLICY"
                )
            schemes.append(ApiKeyScheme(api_keys, settings.apikey_header, limiter))
        elif name == "fake":
            schemes.append(FakeScheme(testing))
        else:
            schemes.append(_from_entry_point(name, settings))
    return schemes


def make_limiter(settings: GuardSettings) -> FailureLimiter:
    """The failed-login limiter: built whatever ``GUARD_AUTH`` lists, since the login
    endpoints check passwords in bearer-only apps too."""
    return FailureLimiter(
        settings.auth_rate_limit,
        settings.auth_ip_rate_limit,
        settings.rate_limit_storage,
        login_ceiling=settings.auth_login_ceiling,
        slow=settings.auth_slow_rate_limit,
        registrations=settings.registration_rate_limit,
        normalize=settings.normalize_login,
    )


def _from_entry_point(name: str, settings: GuardSettings) -> Scheme:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise ConfigurationError(f"GUARD_AUTH: unknown authentication scheme {name!r}")
    try:
        target: Any = found[0].load()
    except Exception as error:  # the plugin's own import failed
        raise ConfigurationError(
            f"GUARD_AUTH: scheme {name!r} ({found[0].value}) failed to load: {error}"
        ) from error
    scheme = target if isinstance(target, Scheme) else target(settings)
    if not isinstance(scheme, Scheme):
        raise ConfigurationError(f"GUARD_AUTH: entry point {name!r} did not give a Scheme")
    return scheme
