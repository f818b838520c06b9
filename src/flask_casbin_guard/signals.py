"""Blinker signals sent by the guard; connect to them for metrics or alerts.

Each is sent with the app as sender and keyword data; none carries a password, token or key.

- ``authenticated``: ``identity`` (an :class:`~flask_casbin_guard.Identity`).
- ``authentication_failed``: ``login`` (claimed, may be ``None``), ``reason``, ``status``
  (401, or 429 when rate limited).
- ``access_denied``: ``login``, ``endpoint``, ``reason``.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

authenticated = _signals.signal("authenticated")
authentication_failed = _signals.signal("authentication-failed")
access_denied = _signals.signal("access-denied")
