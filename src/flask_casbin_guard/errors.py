"""The one exception tree of the package.

Setup-time problems raise :class:`ConfigurationError` (never an ``assert``, which ``python -O``
removes). Request-time problems raise a :class:`GuardHTTPError` subclass; the extension renders
them in one place, so every status code is decided by the class of the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from werkzeug.exceptions import HTTPException


class GuardError(Exception):
    """Base class of every error raised by flask_casbin_guard."""


class ConfigurationError(GuardError):
    """The guard, a route declaration or a view signature is misconfigured.

    Raised at registration or initialisation, naming the key, endpoint or parameter at fault.
    """


class PasswordPolicyError(GuardError, ValueError):
    """A new password does not meet the password policy (too short, refused by the app check)."""


class LoginUnavailable(GuardError, ValueError):
    """A new account's login is one Casbin could take for something else than a new user: a
    role, or a subject that rules written before the account already name."""

    def __init__(self, login: str, reason: str, rule: str | None = None) -> None:
        # The message leaves the rule out: registration shows it to anonymous clients.
        super().__init__(f"login {login[:40]!r} is not available: {reason}")
        #: the login refused
        self.login = login
        #: why, in words
        self.reason = reason
        #: the policy rule that names the login (for administrators: CLI, logs), if one does
        self.rule = rule


class PolicyError(GuardError):
    """A Casbin model or policy could not be loaded, or a policy row is invalid."""

    def __init__(self, message: str, *, original_error: BaseException | None = None) -> None:
        super().__init__(message)
        #: the foreign exception this error wraps, if any
        self.original_error = original_error


class PolicyRejected(PolicyError):
    """A policy change refused for what it asks: an invalid rule, or a policy that would not
    load (a role cycle, a chain too deep). Its message names rules, never a file or database."""

    def __init__(self, message: str, *, version: int | None = None) -> None:
        super().__init__(message)
        #: the store version the change was decided against (``None``: refused before that)
        self.version = version


@dataclass(frozen=True, slots=True)
class ParamIssue:
    """One problem found while binding request parameters."""

    #: parameter name as the client sends it
    param: str
    #: where it was looked for: ``path``, ``query``, ``form``, ``json`` or ``body``
    source: str
    #: what was expected, in words (``"an integer"``)
    expected: str
    #: the received value, truncated and escaped, or ``None`` when missing or redacted
    received: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "param": self.param,
            "source": self.source,
            "expected": self.expected,
            "received": self.received,
        }


class GuardHTTPError(GuardError, HTTPException):
    """A request-time refusal. Its class decides the status; its text never holds secrets."""

    @property
    def status(self) -> int:
        return self.code or 500

    # No code on the base class: Flask then files one handler for the whole tree under "any
    # code", instead of under 500 where 401/403/... lookups would never find it.
    code: int | None = None
    #: short machine-readable code for the JSON body
    error_code: ClassVar[str] = "error"
    #: human text for the response body; safe to show to any client
    public_message: ClassVar[str] = "request refused"

    def __init__(self, message: str | None = None) -> None:
        # The message given here is for logs only; the body always uses ``public_message``.
        GuardError.__init__(self, message or self.public_message)
        HTTPException.__init__(self, description=self.public_message)
        self.log_message = message or self.public_message
        self.args = (message,)  # HTTPException resets args; keep them for copy and pickle

    def __str__(self) -> str:
        return self.log_message


class AuthenticationRequired(GuardHTTPError):
    """No credentials were given on a route that needs a user (401)."""

    code = 401
    error_code = "unauthorized"
    public_message = "authentication required"


class AuthenticationFailed(AuthenticationRequired):
    """Credentials were given but are invalid (401).

    The same body is used whatever the reason (unknown user, wrong password, bad token), so a
    client cannot tell which one it was.
    """

    public_message = "invalid credentials"

    def __init__(self, message: str | None = None, *, login: str | None = None) -> None:
        super().__init__(message)
        #: the login the client claimed, if any: for the audit log, never for the response
        self.login = login


class TooManyAttempts(GuardHTTPError):
    """Too many failed authentications for a login or a client address (429).

    Answered before any password is checked, with the same body whether the login exists or not.
    """

    code = 429
    error_code = "too_many_requests"
    public_message = "too many failed attempts; retry later"

    def __init__(self, message: str | None = None, retry_after: int = 60) -> None:
        super().__init__(message)
        #: seconds until the client may try again (the Retry-After header)
        self.retry_after = retry_after


class ParameterError(GuardHTTPError):
    """Request parameters are missing or invalid (400); lists every problem."""

    code = 400
    error_code = "bad_request"
    public_message = "invalid request parameters"

    def __init__(self, issues: Sequence[ParamIssue]) -> None:
        super().__init__(f"{len(issues)} parameter issue(s)")
        #: every problem found, in the order of the view's parameters
        self.issues: tuple[ParamIssue, ...] = tuple(issues)
        self.args = (self.issues,)


class AccessDenied(GuardHTTPError):
    """An authenticated user is not allowed (403). The reason goes to the log only."""

    code = 403
    error_code = "forbidden"
    public_message = "access denied"


class CsrfFailed(GuardHTTPError):
    """An unsafe request authenticated by a session cookie lacks the session's CSRF token (403)."""

    code = 403
    error_code = "csrf_failed"
    public_message = "missing or invalid CSRF token"


class ObjectNotFound(GuardHTTPError):
    """An object loader found no object for the request's parameter (404)."""

    code = 404
    error_code = "not_found"
    public_message = "object not found"


class ObjectAccessDenied(AccessDenied):
    """Denied on an object its loader found: answered as :class:`ObjectNotFound` (404).

    Status, body and headers are those of a missing object, so a caller who may not act on an
    object learns nothing about whether it exists (OWASP API1); logs and the ``access_denied``
    signal still record a denial.
    """

    code = 404
    error_code = ObjectNotFound.error_code
    public_message = ObjectNotFound.public_message


class PolicyUnavailable(GuardHTTPError):
    """The policy could not be evaluated (503): never treated as an allow."""

    code = 503
    error_code = "policy_unavailable"
    public_message = "authorization is temporarily unavailable"
