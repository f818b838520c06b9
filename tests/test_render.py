"""Default error renderers."""

from __future__ import annotations

from flask_casbin_guard.errors import (
    AccessDenied,
    AuthenticationFailed,
    ParameterError,
    ParamIssue,
    PolicyUnavailable,
)
from flask_casbin_guard.render import error_body, render_html, render_json


def test_json_body_never_carries_the_log_message() -> None:
    error = AccessDenied("alice may not manager store:1 (rule: p, x, y)")
    response = render_json(error)
    assert response.status_code == 403
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "forbidden", "message": "access denied", "status": 403}
    assert b"alice" not in response.get_data()


def test_parameter_details() -> None:
    error = ParameterError(
        [ParamIssue("q", "query", "an integer", "x"), ParamIssue("b", "json", "a string")]
    )
    assert error_body(error)["details"] == [
        {"param": "q", "source": "query", "expected": "an integer", "received": "x"},
        {"param": "b", "source": "json", "expected": "a string", "received": None},
    ]


def test_html_escapes_everything() -> None:
    error = ParameterError([ParamIssue("<script>", "query", "an <b>integer</b>", "<x>")])
    page = render_html(error).get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert page.startswith("<!doctype html>")
    assert render_html(AuthenticationFailed()).status_code == 401
    assert "invalid credentials" in render_html(AuthenticationFailed()).get_data(as_text=True)


def test_503_is_generic() -> None:
    response = render_json(PolicyUnavailable("RuntimeError: invalid policy size in row p, a, b"))
    assert response.status_code == 503
    assert b"policy size" not in response.get_data()
