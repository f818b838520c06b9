"""Identity set by a trusted reverse proxy in a header, and only from that proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed, ConfigurationError
from ..identity import Identity, is_safe_login

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: where Werkzeug's ProxyFix keeps the environ's values from before it rewrote them
_PROXY_FIX_ORIGINAL = "werkzeug.proxy_fix.orig"


class RemoteUserScheme:
    """Trusts ``header`` (``X-Remote-User``) only on requests whose peer is a trusted proxy.

    The peer is the address that actually connected, as the WSGI server saw it: behind
    Werkzeug's ``ProxyFix`` the address from before its ``X-Forwarded-For`` rewrite, which any
    client can write. A request carrying the header from anywhere else is refused (401), never
    anonymous: it is somebody trying to pass for another user. A trusted entry with host bits
    set (``10.0.0.2/8``) is a configuration error, not silently ``10.0.0.0/8``.
    """

    name = "remote_user"

    def __init__(self, trusted: Iterable[str], header: str = "X-Remote-User") -> None:
        try:
            self._trusted: tuple[Network, ...] = tuple(
                ipaddress.ip_network(net, strict=True) for net in trusted
            )
        except ValueError as error:
            raise ConfigurationError(f"GUARD_TRUSTED_PROXIES: {error}") from None
        if not self._trusted:
            raise ConfigurationError(
                "the 'remote_user' scheme needs GUARD_TRUSTED_PROXIES (the proxies' addresses)"
            )
        self._header = header

    def challenge(self) -> None:
        return None

    def authenticate(self, request: Request) -> Identity | None:
        values = request.headers.getlist(self._header)
        if not values:
            return None
        if not self._from_proxy(_connected_peer(request.environ)):
            raise AuthenticationFailed(f"remote_user: {self._header} from an untrusted peer")
        if len(values) != 1 or not is_safe_login(values[0]):
            raise AuthenticationFailed(f"remote_user: unusable {self._header}")
        return Identity(login=values[0], scheme=self.name)

    def _from_proxy(self, address: str | None) -> bool:
        try:
            peer = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(peer in network for network in self._trusted)


def _connected_peer(environ: dict[str, object]) -> str | None:
    """The peer's address before any ``ProxyFix`` rewrite: the one a client cannot choose."""
    original = environ.get(_PROXY_FIX_ORIGINAL)
    # Once ProxyFix ran, REMOTE_ADDR is what X-Forwarded-For said: only its saved value counts.
    peer = original.get("REMOTE_ADDR") if isinstance(original, dict) else environ.get("REMOTE_ADDR")
    return peer if isinstance(peer, str) else None
