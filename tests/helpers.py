"""Small helpers shared by the tests (imported as ``helpers``)."""

from __future__ import annotations

import base64

JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long!"


def basic(login: str, password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    """An ``Authorization: Bearer`` header."""
    return {"Authorization": f"Bearer {token}"}
