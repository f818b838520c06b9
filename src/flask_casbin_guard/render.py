"""Default renderers for guard errors: JSON for API clients, a small HTML page for browsers."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape

from flask import Response

from .errors import GuardHTTPError, ParameterError

#: ``error -> response``; the guard adds the security headers afterwards.
Renderer = Callable[[GuardHTTPError], Response]


def error_body(error: GuardHTTPError) -> dict[str, object]:
    """The JSON document for ``error``: short code, public message, status (and details)."""
    body: dict[str, object] = {
        "error": error.error_code,
        "message": error.public_message,
        "status": error.status,
    }
    if isinstance(error, ParameterError):
        body["details"] = [issue.as_dict() for issue in error.issues]
    return body


def render_json(error: GuardHTTPError) -> Response:
    return Response(
        json.dumps(error_body(error), separators=(",", ":")),
        status=error.status,
        mimetype="application/json",
    )


def render_html(error: GuardHTTPError) -> Response:
    title = f"{error.status} {escape(error.public_message)}"
    items = ""
    if isinstance(error, ParameterError):
        rows = (
            f"<li><code>{escape(i.param)}</code> ({escape(i.source)}): expected "
            f"{escape(i.expected)}</li>"
            for i in error.issues
        )
        items = "<ul>" + "".join(rows) + "</ul>"
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{title}</title></head><body><h1>{title}</h1>{items}</body></html>"
    )
    return Response(page, status=error.status, mimetype="text/html")
