"""The param, remote_user and fake schemes, the failure limiter and the scheme registry."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from conftest import PASSWORDS
from flask_casbin_guard.authn.fake import FakeScheme
from flask_casbin_guard.authn.param import ParamScheme
from flask_casbin_guard.authn.passwords import PasswordHasher
from flask_casbin_guard.authn.ratelimit import FailureLimiter, client_of
from flask_casbin_guard.authn.registry import build_schemes
from flask_casbin_guard.authn.remote_user import RemoteUserScheme
from flask_casbin_guard.config import GuardSettings
from flask_casbin_guard.errors import AuthenticationFailed, ConfigurationError, TooManyAttempts


def request(**kwargs: Any) -> Request:
    return EnvironBuilder(**kwargs).get_request()


@pytest.fixture
def param(hasher: PasswordHasher, password_hashes: dict[str, str]) -> ParamScheme:
    return ParamScheme(password_hashes.get, hasher)


# --- param --------------------------------------------------------------------------------


def test_param_from_form_and_json(param: ParamScheme) -> None:
    form = request(method="POST", data={"login": "alice", "password": PASSWORDS["alice"]})
    assert param.authenticate(form).login == "alice"  # type: ignore[union-attr]
    body = request(method="POST", json={"login": "bob", "password": PASSWORDS["bob"]})
    identity = param.authenticate(body)
    assert identity is not None and (identity.login, identity.scheme) == ("bob", "param")


def test_param_ignores_requests_without_its_fields(param: ParamScheme) -> None:
    assert param.authenticate(request()) is None
    assert param.authenticate(request(method="POST", json={"other": 1})) is None
    assert param.authenticate(request(method="POST", json=[1, 2])) is None
    # Never from the query string: URLs end up in logs.
    assert param.authenticate(request(query_string={"login": "alice", "password": "x"})) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"login": "alice"},
        {"login": "alice", "password": ""},
        {"login": "alice", "password": 12345678901234},
        {"login": ["alice"], "password": "x"},
    ],
)
def test_param_malformed_credentials(param: ParamScheme, fields: dict[str, Any]) -> None:
    with pytest.raises(AuthenticationFailed):
        param.authenticate(request(method="POST", json=fields))


def test_param_unknown_user_and_wrong_password_fail_alike(param: ParamScheme) -> None:
    errors = []
    for login, password in (("alice", "wrong-password!"), ("nobody", "wrong-password!")):
        with pytest.raises(AuthenticationFailed) as info:
            param.authenticate(request(method="POST", json={"login": login, "password": password}))
        errors.append(info.value)
    assert errors[0].public_message == errors[1].public_message
    assert [e.login for e in errors] == ["alice", "nobody"]  # for the audit log only


def test_param_field_names_are_configurable(
    hasher: PasswordHasher, password_hashes: dict[str, str]
) -> None:
    scheme = ParamScheme(password_hashes.get, hasher, user_field="USER", password_field="PASS")
    form = request(method="POST", data={"USER": "carol", "PASS": PASSWORDS["carol"]})
    assert scheme.authenticate(form).login == "carol"  # type: ignore[union-attr]


def test_param_repeated_field_is_not_guessed(param: ParamScheme) -> None:
    data = {"login": ["alice", "bob"], "password": PASSWORDS["alice"]}
    assert param.authenticate(request(method="POST", data=data)) is None


# --- remote_user ------------------------------------------------------------------------------


def test_remote_user_needs_trusted_proxies() -> None:
    with pytest.raises(ConfigurationError, match="GUARD_TRUSTED_PROXIES"):
        RemoteUserScheme([])
    with pytest.raises(ConfigurationError, match="GUARD_TRUSTED_PROXIES"):
        RemoteUserScheme(["not-an-address"])


def test_remote_user_trusted_only_from_the_proxy() -> None:
    scheme = RemoteUserScheme(["10.0.0.0/8", "::1"])

    def via(addr: str, **headers: str) -> Request:
        return request(headers=headers, environ_base={"REMOTE_ADDR": addr})

    assert scheme.authenticate(via("10.1.2.3")) is None  # no header: not mine
    identity = scheme.authenticate(via("10.1.2.3", **{"X-Remote-User": "alice"}))
    assert identity is not None and (identity.login, identity.scheme) == ("alice", "remote_user")
    assert scheme.authenticate(via("::1", **{"X-Remote-User": "bob"})).login == "bob"  # type: ignore[union-attr]
    for addr in ("192.168.1.5", "127.0.0.1", "garbage"):
        with pytest.raises(AuthenticationFailed, match="untrusted peer"):
            scheme.authenticate(via(addr, **{"X-Remote-User": "alice"}))
    with pytest.raises(AuthenticationFailed, match="unusable"):
        scheme.authenticate(via("10.0.0.1", **{"X-Remote-User": "alice,admin"}))


def test_remote_user_header_name_is_configurable() -> None:
    scheme = RemoteUserScheme(["127.0.0.1"], header="X-Forwarded-User")
    req = request(headers={"X-Forwarded-User": "carol"}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert scheme.authenticate(req).login == "carol"  # type: ignore[union-attr]


# --- fake -------------------------------------------------------------------------------------


def test_fake_is_refused_outside_testing() -> None:
    with pytest.raises(ConfigurationError, match="app.testing"):
        FakeScheme(lambda: False)


def test_fake_checks_testing_on_every_request() -> None:
    testing = [True]
    scheme = FakeScheme(lambda: testing[0])
    assert scheme.authenticate(request(headers={"X-Fake-User": "alice"})).login == "alice"  # type: ignore[union-attr]
    assert scheme.authenticate(request()) is None
    testing[0] = False  # e.g. TESTING switched off after start-up
    with pytest.raises(AuthenticationFailed):
        scheme.authenticate(request(headers={"X-Fake-User": "alice"}))


# --- failure limiter --------------------------------------------------------------------------


def test_limiter_counts_per_login_from_one_client_and_per_client() -> None:
    limiter = FailureLimiter("3 per minute", "5 per minute", "memory://")
    for _ in range(3):
        limiter.check("alice", "10.0.0.1")
        limiter.failed("alice", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as info:
        limiter.check("alice", "10.0.0.1")  # this login from this client
    assert 1 <= info.value.retry_after <= 61
    limiter.check("alice", "10.0.0.9")  # the same login elsewhere: never locked out
    limiter.check("bob", "10.0.0.2")  # other logins and addresses are unaffected
    for login in ("bob", "carol"):
        limiter.failed(login, "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        limiter.check("dave", "10.0.0.1")  # the address is over its limit, for any login


def test_limiter_slows_a_login_past_its_ceiling_for_clients_that_fail() -> None:
    limiter = FailureLimiter("", "", "memory://", login_ceiling="3 per hour", slow="1 per minute")
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        limiter.failed("alice", address)
    with pytest.raises(TooManyAttempts) as info:
        limiter.check("alice", "10.0.0.1")  # failed within the minute: wait
    assert 1 <= info.value.retry_after <= 61
    limiter.check("alice", "10.0.0.4")  # no failure from here: at once
    limiter.check("bob", "10.0.0.1")  # other logins are not slowed


def test_limiter_counts_attempts_in_flight() -> None:
    limiter = FailureLimiter("2 per minute", "", "memory://")
    limiter.in_flight_wait = 0.1
    first = limiter.attempt("alice", "10.0.0.1")
    second = limiter.attempt("alice", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as info:
        limiter.attempt("alice", "10.0.0.1")  # two outcomes pending could both be failures
    assert info.value.retry_after == 1  # after waiting in_flight_wait for them
    with first:
        pass  # a success frees its reservation and counts nothing
    with limiter.attempt("alice", "10.0.0.1") as third, second:
        second.failed()
        third.failed()
    with pytest.raises(TooManyAttempts):
        limiter.check("alice", "10.0.0.1")


def test_limiter_waits_for_attempts_in_flight_that_succeed() -> None:
    limiter = FailureLimiter("1 per minute", "", "memory://")
    pending = limiter.attempt("alice", "10.0.0.1")
    threading.Timer(0.05, pending.__exit__, (None, None, None)).start()  # a success, soon
    started = time.monotonic()
    with limiter.attempt("alice", "10.0.0.1"):  # waited for it, not refused
        assert 0.04 <= time.monotonic() - started < limiter.in_flight_wait


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unix:/run/app.sock", "unix:/run/app.sock"),
        (None, None),
        ("", None),
    ],
)
def test_clients_are_ipv4_addresses_or_ipv6_slash_64(
    address: str | None, client: str | None
) -> None:
    assert client_of(address) == client


def test_limiter_without_limits_never_refuses() -> None:
    limiter = FailureLimiter("", "", "memory://")
    for _ in range(50):
        limiter.failed("alice", "10.0.0.1")
    limiter.check("alice", "10.0.0.1")


@pytest.mark.parametrize(
    ("login", "address", "storage"), [("10 per fortnight", "", "memory://"), ("", "", "nosuch://x")]
)
def test_limiter_configuration_errors(login: str, address: str, storage: str) -> None:
    with pytest.raises(ConfigurationError):
        FailureLimiter(login, address, storage)


@pytest.mark.services
def test_limiter_shares_counts_through_redis() -> None:
    import redis

    from conftest import services_required

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if services_required():
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    login = f"user-{time.time_ns()}"
    first = FailureLimiter("2 per minute", "", "redis://127.0.0.1:6379/15")
    second = FailureLimiter("2 per minute", "", "redis://127.0.0.1:6379/15")  # another process
    first.failed(login, None)
    with first.attempt(login, None), pytest.raises(TooManyAttempts):
        second.check(login, None)  # one failure and one attempt in flight in another process
    second.failed(login, None)
    with pytest.raises(TooManyAttempts):
        first.check(login, None)


def test_password_schemes_are_refused_before_checking_when_limited(
    hasher: PasswordHasher, password_hashes: dict[str, str]
) -> None:
    limiter = FailureLimiter("2 per minute", "", "memory://")
    calls: list[str] = []

    def getter(login: str) -> str | None:
        calls.append(login)
        return password_hashes.get(login)

    scheme = ParamScheme(getter, hasher, limiter=limiter)
    bad = {"login": "alice", "password": "wrong-password!"}
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            scheme.authenticate(request(method="POST", json=bad))
    good = {"login": "alice", "password": PASSWORDS["alice"]}
    with pytest.raises(TooManyAttempts):
        scheme.authenticate(request(method="POST", json=good))
    assert calls == ["alice", "alice"]  # the limited attempt never reached the password check


# --- registry --------------------------------------------------------------------------------


def _build(auth: list[str], testing: bool = True, **settings: Any) -> list[Any]:
    return build_schemes(
        GuardSettings(auth=tuple(auth), **settings),
        "realm",
        bearer=None,
        get_user_pass=lambda login: None,
        hasher=PasswordHasher(),
        registered={},
        testing=lambda: testing,
        rehash=None,
    )


def test_registry_builds_in_order() -> None:
    schemes = _build(["param", "basic", "fake", "remote_user"], trusted_proxies=("10.0.0.1",))
    assert [s.name for s in schemes] == ["param", "basic", "fake", "remote_user"]


@pytest.mark.parametrize(
    ("auth", "testing", "fragment"),
    [
        (["session"], True, "needs the app's session"),
        (["apikey"], True, "needs the built-in user store"),
        (["kerberos"], True, "unknown authentication scheme 'kerberos'"),
        (["fake"], False, "app.testing"),
        (["remote_user"], True, "GUARD_TRUSTED_PROXIES"),
    ],
)
def test_registry_errors(auth: list[str], testing: bool, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        _build(auth, testing)
