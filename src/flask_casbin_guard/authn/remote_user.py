"""Identity set by a trusted reverse proxy in a header, and only from that proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from werkzeug.wrappers import Request

from ..errors import AuthenticationFailed, ConfigurationError
from ..identity import Identity, is_safe_login

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RemoteUserScheme:
    """Trusts ``header`` (``X-Remote-User``) only on requests whose peer is a trusted proxy.

    The peer is ``request.remote_addr`` as the WSGI server saw it: do not put a middleware that
    rewrites it from ``X-Forwarded-For`` in front unless that header is itself trustworthy.
    A request carrying the header from anywhere else is refused (401), never anonymous: it is
    somebody trying to pass for another user.
    """

    name = "remote_user"

    def __init__(self, trusted: Iterable[str], header: str = "X-Remote-User") -> None:
        try:
            self._trusted: tuple[Network, ...] = tuple(
                ipaddress.ip_network(net, strict=False) for net in trusted
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
        if not self._from_proxy(request.remote_addr):
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
