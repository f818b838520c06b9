"""BasicScheme on bare werkzeug requests (no Flask app), with real argon2 hashes."""

from __future__ import annotations

import base64

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from conftest import PASSWORDS
from flask_casbin_guard.authn.base import Scheme
from flask_casbin_guard.authn.basic import BasicScheme
from flask_casbin_guard.authn.passwords import PasswordHasher
from flask_casbin_guard.errors import AuthenticationFailed
from flask_casbin_guard.identity import Identity
from helpers import basic, bearer


class RecordingGetter:
    """``login -> hash`` lookup that remembers every login it was asked for."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.hashes = hashes
        self.calls: list[str] = []

    def __call__(self, login: str) -> str | None:
        self.calls.append(login)
        return self.hashes.get(login)


def request(headers: dict[str, str] | None = None) -> Request:
    return EnvironBuilder(headers=headers or {}).get_request()


def raw_basic(payload: bytes, scheme: str = "Basic") -> dict[str, str]:
    return {"Authorization": f"{scheme} {base64.b64encode(payload).decode()}"}


@pytest.fixture
def getter(password_hashes: dict[str, str]) -> RecordingGetter:
    return RecordingGetter(password_hashes)


@pytest.fixture
def scheme(getter: RecordingGetter, hasher: PasswordHasher) -> BasicScheme:
    return BasicScheme(getter, hasher, realm="test-app")


def failure(scheme: BasicScheme, headers: dict[str, str]) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        scheme.authenticate(request(headers))
    assert info.value.code == 401
    return info.value


def test_follows_the_scheme_protocol(scheme: BasicScheme) -> None:
    assert isinstance(scheme, Scheme)
    assert scheme.name == "basic"


def test_no_header_is_not_mine(scheme: BasicScheme, getter: RecordingGetter) -> None:
    assert scheme.authenticate(request()) is None
    assert getter.calls == []


@pytest.mark.parametrize(
    "headers",
    [
        bearer("eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        {"Authorization": "Digest username=alice"},
        {"Authorization": "Basicdummy"},
        {"Authorization": ""},
        {"X-Authorization": basic("alice", "alice-password")["Authorization"]},
    ],
)
def test_other_schemes_are_not_mine(
    scheme: BasicScheme, getter: RecordingGetter, headers: dict[str, str]
) -> None:
    assert scheme.authenticate(request(headers)) is None
    assert getter.calls == []


def test_valid_credentials(scheme: BasicScheme, getter: RecordingGetter) -> None:
    identity = scheme.authenticate(request(basic("alice", PASSWORDS["alice"])))
    assert identity == Identity("alice", "basic")
    assert identity is not None
    assert dict(identity.claims) == {}
    assert getter.calls == ["alice"]


def test_password_may_contain_colons(hasher: PasswordHasher) -> None:
    stored = hasher.hash("pa:ss:word")
    scheme = BasicScheme({"carol": stored}.get, hasher, realm="r")
    assert scheme.authenticate(request(basic("carol", "pa:ss:word"))) == Identity("carol", "basic")


@pytest.mark.parametrize("kind", ["basic", "BASIC", "bAsIc"])
def test_scheme_name_is_case_insensitive(scheme: BasicScheme, kind: str) -> None:
    header = basic("bob", PASSWORDS["bob"])["Authorization"].replace("Basic", kind, 1)
    assert scheme.authenticate(request({"Authorization": header})) == Identity("bob", "basic")


def test_wrong_password_and_unknown_user_fail_identically(
    scheme: BasicScheme, getter: RecordingGetter
) -> None:
    wrong = failure(scheme, basic("alice", "not-alices-password"))
    unknown = failure(scheme, basic("mallory", "alice-password"))
    assert getter.calls == ["alice", "mallory"]
    assert str(wrong) == str(unknown)
    assert wrong.public_message == unknown.public_message
    assert wrong.description == unknown.description
    assert wrong.get_body() == unknown.get_body()
    assert "alice" not in str(wrong)
    assert "mallory" not in str(unknown)


def test_password_of_another_user_fails(scheme: BasicScheme) -> None:
    failure(scheme, basic("alice", PASSWORDS["bob"]))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ"},  # missing padding
        {"Authorization": "Basic "},
        {"Authorization": "Basic"},
        raw_basic(b"alice-without-colon"),
        raw_basic(b"alice:"),  # empty password
        raw_basic(b":alice-password"),  # empty login
        raw_basic(b":"),
        raw_basic(b"\xff\xfe:password"),  # not UTF-8
        raw_basic(b"alice:pass\xc3"),  # truncated UTF-8 sequence
    ],
)
def test_malformed_credentials_fail(
    scheme: BasicScheme, getter: RecordingGetter, headers: dict[str, str]
) -> None:
    error = failure(scheme, headers)
    assert error.public_message == AuthenticationFailed.public_message
    assert getter.calls == []


@pytest.mark.parametrize(
    "login",
    ["alice,admin", "alice\nadmin", "alice\r\nX-Forged: 1", " alice", "alice ", "al\x00ice"],
)
def test_unsafe_login_never_reaches_the_getter(
    scheme: BasicScheme, getter: RecordingGetter, login: str
) -> None:
    error = failure(scheme, raw_basic(f"{login}:{PASSWORDS['alice']}".encode()))
    assert getter.calls == []
    # same failure as a wrong password: nothing tells the client the login was refused
    assert str(error) == str(failure(scheme, basic("alice", "wrong-password")))


def test_unsafe_login_still_costs_a_verification(
    getter: RecordingGetter, password_hashes: dict[str, str]
) -> None:
    """The unsafe path goes through ``verify(password, None)``, not an early return."""

    class CountingHasher(PasswordHasher):
        def __init__(self) -> None:
            super().__init__()
            self.verified: list[str | None] = []

        def verify(self, password: str, stored: str | None) -> bool:
            self.verified.append(stored)
            return super().verify(password, stored)

    counting = CountingHasher()
    scheme = BasicScheme(getter, counting, realm="r")
    with pytest.raises(AuthenticationFailed):
        scheme.authenticate(request(raw_basic(b"a,b:password")))
    assert counting.verified == [None]
    assert getter.calls == []


def test_challenge_format(scheme: BasicScheme) -> None:
    assert scheme.challenge() == 'Basic realm="test-app", charset="UTF-8"'


@pytest.mark.parametrize(
    ("realm", "quoted"),
    [
        ('my "app"', r'"my \"app\""'),
        ("back\\slash", r'"back\\slash"'),
        ('\\"', r'"\\\""'),
        ("line\r\nbreak", '"linebreak"'),
        ("Zoë's app", '"Zoë\'s app"'),
    ],
)
def test_challenge_realm_quoting(hasher: PasswordHasher, realm: str, quoted: str) -> None:
    scheme = BasicScheme(lambda _login: None, hasher, realm=realm)
    assert scheme.challenge() == f'Basic realm={quoted}, charset="UTF-8"'
