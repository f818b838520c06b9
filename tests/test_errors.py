"""The exception tree: one base class, HTTP errors whose body never carries the log text."""

from __future__ import annotations

import dataclasses

import pytest
from werkzeug.exceptions import HTTPException

from flask_casbin_guard.errors import (
    AccessDenied,
    AuthenticationFailed,
    AuthenticationRequired,
    ConfigurationError,
    GuardError,
    GuardHTTPError,
    ObjectNotFound,
    ParameterError,
    ParamIssue,
    PolicyError,
    PolicyUnavailable,
)

HTTP_ERRORS: list[tuple[type[GuardHTTPError], int, str]] = [
    (AuthenticationRequired, 401, "unauthorized"),
    (AuthenticationFailed, 401, "unauthorized"),
    (AccessDenied, 403, "forbidden"),
    (ObjectNotFound, 404, "not_found"),
    (PolicyUnavailable, 503, "policy_unavailable"),
]

#: a log message full of things a client must never see
LOG_MESSAGE = "user alice@corp denied: row p,admin,/secret,GET; token=eyJhbGciOi.SECRET"


ALL_HTTP = [cls for cls, _, _ in HTTP_ERRORS] + [ParameterError]


@pytest.mark.parametrize(
    "cls",
    [ConfigurationError, PolicyError, GuardHTTPError, *ALL_HTTP],
)
def test_every_error_is_a_guard_error(cls: type[Exception]) -> None:
    assert issubclass(cls, GuardError)
    assert issubclass(GuardError, Exception)


@pytest.mark.parametrize("cls", ALL_HTTP)
def test_http_errors_are_werkzeug_http_exceptions(cls: type[GuardHTTPError]) -> None:
    assert issubclass(cls, GuardHTTPError)
    assert issubclass(cls, HTTPException)


@pytest.mark.parametrize("cls", [ConfigurationError, PolicyError])
def test_setup_errors_are_not_http_errors(cls: type[GuardError]) -> None:
    assert not issubclass(cls, HTTPException)
    assert not issubclass(cls, GuardHTTPError)


def test_authentication_failed_is_an_authentication_required() -> None:
    assert issubclass(AuthenticationFailed, AuthenticationRequired)
    assert AuthenticationFailed.public_message != AuthenticationRequired.public_message


def test_base_http_error_has_no_code() -> None:
    assert GuardHTTPError.code is None
    assert GuardHTTPError().status == 500


@pytest.mark.parametrize(("cls", "code", "error_code"), HTTP_ERRORS)
def test_status_codes(cls: type[GuardHTTPError], code: int, error_code: str) -> None:
    error = cls("log only")
    assert error.code == code
    assert error.status == code
    assert error.error_code == error_code
    assert error.get_response().status_code == code


def test_parameter_error_status_and_issues() -> None:
    issues = [
        ParamIssue("id", "path", "an integer", "abc"),
        ParamIssue("q", "query", "a string"),
    ]
    error = ParameterError(issues)
    assert error.code == 400
    assert error.status == 400
    assert error.error_code == "bad_request"
    assert error.issues == tuple(issues)
    assert isinstance(error.issues, tuple)
    assert str(error) == "2 parameter issue(s)"
    # the received value is reported through ``issues``, never through the generic body
    assert "abc" not in error.get_body()
    assert error.description == ParameterError.public_message


@pytest.mark.parametrize("cls", [cls for cls, _, _ in HTTP_ERRORS])
def test_public_body_never_contains_log_message(cls: type[GuardHTTPError]) -> None:
    error = cls(LOG_MESSAGE)
    assert str(error) == LOG_MESSAGE
    assert error.log_message == LOG_MESSAGE
    assert error.description == cls.public_message
    body = error.get_body()
    response = error.get_response().get_data(as_text=True)
    assert cls.public_message in body
    assert cls.public_message in response
    for text in (body, response, error.description):
        assert "alice" not in text
        assert "SECRET" not in text
        assert "p,admin" not in text


@pytest.mark.parametrize("cls", [cls for cls, _, _ in HTTP_ERRORS])
def test_default_message_is_public_message(cls: type[GuardHTTPError]) -> None:
    error = cls()
    assert str(error) == cls.public_message
    assert error.log_message == cls.public_message
    assert error.description == cls.public_message


def test_http_error_is_caught_as_http_exception() -> None:
    with pytest.raises(HTTPException) as info:
        raise AccessDenied("nope")
    assert info.value.code == 403


def test_param_issue_as_dict() -> None:
    issue = ParamIssue(param="page", source="query", expected="an integer", received="'x'")
    assert issue.as_dict() == {
        "param": "page",
        "source": "query",
        "expected": "an integer",
        "received": "'x'",
    }


def test_param_issue_received_defaults_to_none() -> None:
    assert ParamIssue("token", "json", "a string").as_dict() == {
        "param": "token",
        "source": "json",
        "expected": "a string",
        "received": None,
    }


def test_param_issue_is_frozen() -> None:
    issue = ParamIssue("id", "path", "an integer")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.received = "leak"  # type: ignore[misc]


def test_policy_error_keeps_original_error() -> None:
    cause = OSError("no such file: policy.csv")
    error = PolicyError("cannot load policy", original_error=cause)
    assert error.original_error is cause
    assert str(error) == "cannot load policy"


def test_policy_error_original_error_defaults_to_none() -> None:
    assert PolicyError("bad row").original_error is None


def test_policy_error_original_error_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        PolicyError("bad row", ValueError("x"))  # type: ignore[misc]


def test_configuration_error_message() -> None:
    error = ConfigurationError("GUARD_MODE must be 'prod' or 'dev'")
    assert str(error) == "GUARD_MODE must be 'prod' or 'dev'"
