"""``GUARD_*`` configuration: one typed, documented field per key, unknown keys rejected."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from .errors import ConfigurationError

PREFIX = "GUARD_"

#: JWT algorithms we accept; ``none`` is never one of them.
JWT_ALGORITHMS = frozenset(
    {
        "HS256", "HS384", "HS512",
        "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512",
        "EdDSA",
    }
)  # fmt: skip

#: The longest clock skew we let anyone configure: RFC 7519 says "a few minutes" at most.
MAX_LEEWAY = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """The validated ``GUARD_*`` configuration of one app."""

    #: authentication schemes tried in order (``GUARD_AUTH``)
    auth: tuple[str, ...] = ("bearer", "basic")
    #: Casbin model: a file path or the model text; ``None`` is the packaged RBAC model
    model: str | None = None
    #: policy: a CSV path; ``None`` is an empty policy (every Casbin decision denies)
    policy: str | None = None
    #: CSV loaded once into an empty database store (database stores only)
    policy_seed: str | None = None
    #: ``login -> password hash or None``
    get_user_pass: Callable[[str], str | None] | None = None
    #: HMAC secret, or the private key for asymmetric algorithms
    jwt_secret: str | bytes | None = None
    #: the one algorithm tokens must use
    jwt_algorithm: str = "HS256"
    #: verification key for asymmetric algorithms
    jwt_public_key: str | bytes | None = None
    #: required ``iss`` claim, when set
    jwt_issuer: str | None = None
    #: required ``aud`` claim (one value or several accepted ones), when set
    jwt_audience: str | tuple[str, ...] | None = None
    #: lifetime of tokens made by :meth:`CasbinGuard.create_token`
    jwt_expires: timedelta = timedelta(hours=1)
    #: clock skew tolerated on ``exp``/``nbf``/``iat``
    jwt_leeway: timedelta = timedelta(seconds=10)
    #: verified tokens remembered until they expire (LRU); 0 verifies every request
    jwt_cache_size: int = 4096
    #: bytes those tokens and their claims may hold, whatever their number
    jwt_cache_bytes: int = 16 << 20
    #: how other processes learn of policy changes (database stores only; default: polling)
    watcher: str | None = None
    #: seconds between two reads of the store's version (the bound on a lost notification)
    watcher_interval: float = 5.0
    #: declaration applied to routes registered without one (``None``: refuse them)
    default_authorize: Any = None
    #: decisions remembered per policy version (LRU); 0 turns the cache off
    decision_cache_size: int = 16384
    #: bytes those decisions may hold (their request values), whatever their number
    decision_cache_bytes: int = 16 << 20
    #: longest object value (characters) of an object permission; longer ones are a 400
    max_object_length: int = 1024
    #: roles given to users created through the user store
    default_roles: tuple[str, ...] = ()
    #: put before every login to make its Casbin subject (``"user:"``), keeping users and
    #: roles apart when identities come from elsewhere; ``""`` uses the login itself
    user_prefix: str = ""
    #: ``"prod"`` or ``"dev"``
    mode: str = "prod"
    #: whether Flask's ``static`` endpoints are open to everyone
    open_static: bool = True
    #: where the tenant (Casbin domain) of a request comes from, for models with domains
    tenant: Any = None
    #: realm named in ``WWW-Authenticate`` challenges (default: the app's name)
    realm: str | None = None
    #: seconds a login session lasts, whatever its activity
    session_lifetime: float = 12 * 3600
    #: mark the session cookie ``Secure`` (``None``: when ``PREFERRED_URL_SCHEME`` is https)
    session_secure: bool | None = None
    #: lifetime of refresh tokens made by :meth:`CasbinGuard.create_refresh_token`
    jwt_refresh_expires: timedelta = timedelta(days=30)
    #: form/JSON field names read by the ``param`` scheme
    param_user: str = "login"
    param_password: str = "password"  # noqa: S105 - a field name
    #: header carrying API keys (``apikey`` scheme)
    apikey_header: str = "X-API-Key"
    #: whether the auth blueprint offers ``POST /register`` (built-in user store)
    registration: bool = False
    #: proxies (addresses or networks) whose ``remote_user`` header is trusted
    trusted_proxies: tuple[str, ...] = ()
    #: header a trusted proxy sets to the authenticated login
    remote_user_header: str = "X-Remote-User"
    #: failed authentications allowed per login from one client ("" for no limit)
    auth_rate_limit: str = "10 per minute; 100 per hour"
    #: failed authentications allowed per client: IPv4 address, IPv6 /64 ("" for no limit)
    auth_ip_rate_limit: str = "60 per minute; 600 per hour"
    #: failures of one login from all clients past which it is slowed ("" for no ceiling)
    auth_login_ceiling: str = "100 per hour"
    #: failures allowed per login from one client once the login is past its ceiling
    auth_slow_rate_limit: str = "1 per minute"
    #: ``POST /auth/register`` requests allowed per client, whatever their outcome
    registration_rate_limit: str = "10 per hour"
    #: where failure counts live: ``memory://`` (per process) or ``redis://host:port/db``
    rate_limit_storage: str = "memory://"
    #: shortest password :meth:`CasbinGuard.hash_password` accepts
    password_min_length: int = 12
    #: longest password accepted, new or checked (ASVS 4.0.3 2.1.2); longer ones are wrong
    #: passwords, refused before any hashing (a legacy hash costs ~20x more for 4 KB)
    password_max_length: int = 128
    #: seconds a successful Basic verification is remembered per process (keyed by an HMAC of
    #: login, password and stored hash; forgotten when the account changes); 0 disables
    basic_cache_seconds: float = 300.0
    #: ``login -> the form its failed logins are counted under`` (``None``: NFKC + casefold),
    #: so case variants of a login share its limits; the lookup still gets the login as typed
    normalize_login: Callable[[str], str] | None = None
    #: ``password -> error message or None``, e.g. a breached-password check
    password_check: Callable[[str], str | None] | None = None
    #: where revocations live without a policy database: a SQLAlchemy URL, or a file path
    #: relative to the instance folder (``None``: ``guard-revocations.db`` there)
    revocation_store: str | None = None

    @classmethod
    def from_mapping(
        cls, config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
    ) -> GuardSettings:
        """Read every ``GUARD_*`` key of ``config``; ``overrides`` use the field names.

        :raises ConfigurationError: on an unknown key or a value of the wrong type.
        """
        names = {f.name for f in fields(cls)}
        raw: dict[str, Any] = {}
        for key, value in config.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX) :].lower()
            if name not in names:
                hint = difflib.get_close_matches(name.upper(), [n.upper() for n in names], 1)
                suffix = f"; did you mean {PREFIX}{hint[0]}?" if hint else ""
                raise ConfigurationError(f"unknown configuration key {key!r}{suffix}")
            raw[name] = value
        for name, value in (overrides or {}).items():
            if name not in names:
                raise ConfigurationError(f"unknown guard option {name!r}")
            raw[name] = value
        settings = cls(**{name: _CHECKS[name](name, value) for name, value in raw.items()})
        if settings.password_min_length > settings.password_max_length:
            raise ConfigurationError(
                f"{_key('password_min_length')} must not be greater than "
                f"{_key('password_max_length')}"
            )
        return settings


def _key(name: str) -> str:
    return PREFIX + name.upper()


def _opt_str(name: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise ConfigurationError(f"{_key(name)} must be a non-empty string")


def _opt_key_material(name: str, value: Any) -> str | bytes | None:
    if value is None or (isinstance(value, str | bytes) and value):
        return value
    raise ConfigurationError(f"{_key(name)} must be a non-empty string or bytes")


def _names(name: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(
        isinstance(item, str) and item for item in items
    ):
        raise ConfigurationError(f"{_key(name)} must be a list of non-empty strings")
    if len(set(items)) != len(items):
        raise ConfigurationError(f"{_key(name)} lists a name twice: {list(items)!r}")
    return tuple(items)


def _duration(name: str, value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise ConfigurationError(f"{_key(name)} must be a timedelta or a number of seconds")
    try:
        delay = value if isinstance(value, timedelta) else timedelta(seconds=value)
    except (ValueError, OverflowError):  # nan, inf, absurdly large numbers
        raise ConfigurationError(f"{_key(name)}: {value!r} is not a usable duration") from None
    if delay < timedelta(0):
        raise ConfigurationError(f"{_key(name)} must not be negative")
    return delay


def _expires(name: str, value: Any) -> timedelta:
    delay = _duration(name, value)
    if delay <= timedelta(0):
        raise ConfigurationError(f"{_key(name)} must be positive")
    return delay


def _leeway(name: str, value: Any) -> timedelta:
    delay = _duration(name, value)
    if delay > MAX_LEEWAY:
        raise ConfigurationError(f"{_key(name)} must be at most {MAX_LEEWAY.seconds} seconds")
    return delay


def _algorithm(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in JWT_ALGORITHMS:
        raise ConfigurationError(
            f"{_key(name)} must be one of {sorted(JWT_ALGORITHMS)}, not {value!r}"
        )
    return str(value)


def _audience(name: str, value: Any) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return _opt_str(name, value)
    return _names(name, value)


def _callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigurationError(f"{_key(name)} must be callable")
    return value


def _mode(name: str, value: Any) -> str:
    if value not in ("prod", "dev"):
        raise ConfigurationError(f"{_key(name)} must be 'prod' or 'dev', not {value!r}")
    return str(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{_key(name)} must be True or False")
    return value


def _any(name: str, value: Any) -> Any:
    return value


def _interval(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.05 <= value <= 3600:
        raise ConfigurationError(f"{_key(name)} must be a number of seconds from 0.05 to 3600")
    return float(value)


def _ttl(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3600:
        raise ConfigurationError(f"{_key(name)} must be a number of seconds from 0 to 3600")
    return float(value)


def _cache_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000_000:
        raise ConfigurationError(f"{_key(name)} must be an integer from 0 to 10000000")
    return value


def _bytes(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1 << 40:
        raise ConfigurationError(f"{_key(name)} must be a number of bytes from 0 to 2**40")
    return value


def _object_length(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 1 << 20:
        raise ConfigurationError(f"{_key(name)} must be an integer from 16 to 1048576")
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{_key(name)} must be a string")
    return value


def _prefix(name: str, value: Any) -> str:
    # Empty is the default; otherwise the rules of a login, so a subject stays one CSV field.
    if not isinstance(value, str):
        raise ConfigurationError(f"{_key(name)} must be a string such as 'user:'")
    if value and (
        len(value) > 64 or not value.isprintable() or "," in value or value != value.strip()
    ):
        raise ConfigurationError(
            f"{_key(name)} must be printable text without commas or surrounding spaces, "
            f"such as 'user:', not {value!r}"
        )
    return value


def _length(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 128:
        raise ConfigurationError(f"{_key(name)} must be an integer from 8 to 128")
    return value


def _max_length(name: str, value: Any) -> int:
    # ASVS 2.1.2: passphrases of 64 characters at least must fit.
    if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 4096:
        raise ConfigurationError(f"{_key(name)} must be an integer from 64 to 4096")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "auth": lambda n, v: _names(n, v) if v != [] and v != () else (),
    "model": _opt_str,
    "policy": _opt_str,
    "policy_seed": _opt_str,
    "get_user_pass": _callable,
    "jwt_secret": _opt_key_material,
    "jwt_algorithm": _algorithm,
    "jwt_public_key": _opt_key_material,
    "jwt_issuer": _opt_str,
    "jwt_audience": _audience,
    "jwt_expires": _expires,
    "jwt_leeway": _leeway,
    "jwt_cache_size": _cache_size,
    "jwt_cache_bytes": _bytes,
    "watcher": _opt_str,
    "watcher_interval": _interval,
    "default_authorize": _any,
    "default_roles": _names,
    "user_prefix": _prefix,
    "decision_cache_size": _cache_size,
    "decision_cache_bytes": _bytes,
    "max_object_length": _object_length,
    "mode": _mode,
    "open_static": _bool,
    "realm": _opt_str,
    "tenant": _any,
    "session_lifetime": lambda n, v: _interval(n, v) if v != 12 * 3600 else float(v),
    "session_secure": lambda n, v: v if v is None else _bool(n, v),
    "jwt_refresh_expires": _expires,
    "param_user": _opt_str,
    "param_password": _opt_str,
    "trusted_proxies": lambda n, v: _names(n, v) if v else (),
    "apikey_header": _opt_str,
    "registration": _bool,
    "remote_user_header": _opt_str,
    "auth_rate_limit": _str,
    "auth_ip_rate_limit": _str,
    "auth_login_ceiling": _str,
    "auth_slow_rate_limit": _str,
    "registration_rate_limit": _str,
    "rate_limit_storage": _opt_str,
    "password_min_length": _length,
    "password_max_length": _max_length,
    "password_check": _callable,
    "basic_cache_seconds": _ttl,
    "normalize_login": _callable,
    "revocation_store": _opt_str,
}
