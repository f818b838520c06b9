"""JWT bearer tokens with PyJWT: one pinned algorithm, ``exp`` required, no key from the token."""

from __future__ import annotations

import datetime as dt
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jwt
from werkzeug.wrappers import Request

from ..config import GuardSettings
from ..errors import AuthenticationFailed, ConfigurationError
from ..identity import Identity, is_safe_login
from ..memo import BoundedMemo, weigh_strings
from .base import quote_realm

#: Claims the guard sets itself; callers of ``create_token`` cannot override them.
RESERVED_CLAIMS = frozenset({"sub", "exp", "iat", "nbf", "jti", "iss", "aud", "type", "fam"})

#: Longest token we try to decode: larger headers are refused before any parsing.
MAX_TOKEN_LENGTH = 8192

#: RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class BearerScheme:
    """``Authorization: Bearer <JWT>``; also issues tokens (:meth:`create_token`)."""

    name = "bearer"

    def __init__(self, settings: GuardSettings, realm: str) -> None:
        self._algorithm = settings.jwt_algorithm
        self._signing_key, self._verifying_key = _keys(settings)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._expires = settings.jwt_expires
        self._refresh_expires = settings.jwt_refresh_expires
        self._leeway = settings.jwt_leeway
        leeway = settings.jwt_leeway
        self._leeway_seconds = (
            leeway.total_seconds() if isinstance(leeway, dt.timedelta) else leeway
        )
        required = ["exp", "sub"]
        required += ["iss"] if self._issuer else []
        required += ["aud"] if self._audience else []
        self._options: jwt.types.Options = {"require": required}
        self._challenge = f"Bearer realm={quote_realm(realm)}"
        # Verified claims by token, until the token expires: a signature check costs ~40 µs per
        # request, a cache hit under 1 µs. Revocation is checked on every request after this.
        # Bounded in bytes too: a token may be 8 KB, and its claims whatever its issuer put.
        size, budget = settings.jwt_cache_size, settings.jwt_cache_bytes
        self._verified: Callable[[str], Mapping[str, Any]] = self._verify
        if size and budget:
            self._verified = BoundedMemo(self._verify, size, budget, _weigh_token)

    def challenge(self) -> str:
        return self._challenge

    def authenticate(self, request: Request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer":
            return None
        claims = self.decode(token.strip())
        return Identity(login=claims["sub"], scheme=self.name, claims=claims)

    def decode(self, token: str, kind: str = "access") -> dict[str, Any]:
        """The verified claims of a token of ``kind`` (``access`` or ``refresh``).

        :raises AuthenticationFailed: for any invalid or expired token, or one of another kind
            (a refresh token is never accepted where an access token is expected).
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("bearer: missing or oversized token")
        claims = self._verified(token)
        if claims["exp"] + self._leeway_seconds < time.time():
            raise AuthenticationFailed("bearer: ExpiredSignatureError")  # expired while cached
        if claims.get("type", "access") != kind:
            raise AuthenticationFailed(f"bearer: not an {kind} token")
        return dict(claims)

    def _verify(self, token: str) -> Mapping[str, Any]:
        """Signature and claims of ``token``; raises (and caches nothing) when invalid."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.PyJWTError as error:
            # The reason is for the log; the client gets the generic 401 body.
            raise AuthenticationFailed(f"bearer: {type(error).__name__}") from None
        if not is_safe_login(claims["sub"]) or not isinstance(claims["exp"], int | float):
            raise AuthenticationFailed("bearer: unusable subject or expiry")
        return MappingProxyType(claims)

    def create_token(
        self,
        login: str,
        expires: dt.timedelta | None = None,
        claims: Mapping[str, Any] | None = None,
        kind: str = "access",
        family: str | None = None,
    ) -> str:
        """A signed token of ``kind`` (``access`` or ``refresh``) for ``login``.

        :param family: the refresh token family the token belongs to (claim ``fam``); a new
            refresh token without one starts its own family.
        """
        if self._signing_key is None:
            raise ConfigurationError(
                "GUARD_JWT_SECRET (the private key) is needed to create "
                f"{self._algorithm} tokens; only a public key is configured"
            )
        if not isinstance(login, str) or not is_safe_login(login):
            raise ConfigurationError(f"cannot create a token for login {login!r}")
        extra = dict(claims or {})
        clash = RESERVED_CLAIMS.intersection(extra)
        if clash:
            raise ConfigurationError(f"claims {sorted(clash)} are set by the guard itself")
        now = dt.datetime.now(dt.UTC)
        jti = uuid.uuid4().hex
        payload: dict[str, Any] = {
            **extra,
            "sub": login,
            # A fractional NumericDate (RFC 7519 allows it): compared exactly with revocation
            # stamps, so a token made just after a logout in the same second stays valid.
            "iat": now.timestamp(),
            "nbf": int(now.timestamp()),
            "exp": (now + (expires if expires is not None else self._lifetime(kind))).timestamp(),
            "jti": jti,
            "type": kind,
        }
        if family is not None or kind == "refresh":
            payload["fam"] = family or jti
        if self._issuer:
            payload["iss"] = self._issuer
        if self._audience:
            payload["aud"] = self._audience
        return jwt.encode(payload, self._signing_key, algorithm=self._algorithm)

    def _lifetime(self, kind: str) -> dt.timedelta:
        if kind not in ("access", "refresh"):
            raise ConfigurationError(f"unknown token kind {kind!r}")
        return self._expires if kind == "access" else self._refresh_expires


def _keys(settings: GuardSettings) -> tuple[Any, Any]:
    """(signing key, verifying key) for the configured algorithm, checked up front."""
    algorithm = settings.jwt_algorithm
    secret, public = settings.jwt_secret, settings.jwt_public_key
    if algorithm.startswith("HS"):
        if secret is None:
            raise ConfigurationError(f"GUARD_JWT_SECRET is required for {algorithm} tokens")
        if public is not None:
            raise ConfigurationError(f"GUARD_JWT_PUBLIC_KEY makes no sense with {algorithm}")
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < _HMAC_MIN_BYTES[algorithm]:
            raise ConfigurationError(
                f"GUARD_JWT_SECRET must be at least {_HMAC_MIN_BYTES[algorithm]} bytes "
                f"for {algorithm}"
            )
        return raw, raw
    if public is None:
        raise ConfigurationError(f"GUARD_JWT_PUBLIC_KEY is required for {algorithm} tokens")
    algo = jwt.get_algorithm_by_name(algorithm)
    try:
        verifying = algo.prepare_key(public)
        signing = algo.prepare_key(secret) if secret is not None else None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise ConfigurationError(
            f"GUARD_JWT_SECRET/GUARD_JWT_PUBLIC_KEY are not valid {algorithm} keys: "
            f"{type(error).__name__}"
        ) from None
    return signing, verifying


def _weigh_token(args: tuple[Any, ...], claims: Mapping[str, Any]) -> int:
    """The token and its claims, one level deep (nested claim values are rare and small)."""
    items = sum(sys.getsizeof(key) + sys.getsizeof(value) for key, value in claims.items())
    return weigh_strings(args) + sys.getsizeof(dict(claims)) + items
