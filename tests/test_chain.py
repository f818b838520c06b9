"""AuthChain: schemes tried in order, first identity wins, a failure stops the chain."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from conftest import PASSWORDS
from flask_casbin_guard.authn.base import Scheme
from flask_casbin_guard.authn.basic import BasicScheme
from flask_casbin_guard.authn.bearer import BearerScheme
from flask_casbin_guard.authn.chain import AuthChain
from flask_casbin_guard.authn.passwords import PasswordHasher
from flask_casbin_guard.config import GuardSettings
from flask_casbin_guard.errors import AuthenticationFailed
from flask_casbin_guard.identity import Identity
from helpers import JWT_SECRET, basic, bearer


class FakeScheme:
    """A scheme with a scripted answer that records each time it is consulted."""

    def __init__(
        self,
        name: str,
        result: Identity | Exception | None = None,
        challenge: str | None = None,
    ) -> None:
        self.name = name
        self._result = result
        self._challenge = challenge
        self.calls: list[Request] = []

    def authenticate(self, request: Request) -> Identity | None:
        self.calls.append(request)
        if isinstance(self._result, Exception):
            raise self._result
        return self._result

    def challenge(self) -> str | None:
        return self._challenge


def request(headers: dict[str, str] | None = None) -> Request:
    return EnvironBuilder(headers=headers or {}).get_request()


def test_fake_scheme_follows_the_protocol() -> None:
    assert isinstance(FakeScheme("x"), Scheme)


def test_first_identity_wins() -> None:
    first = FakeScheme("first", Identity("alice", "first"))
    second = FakeScheme("second", Identity("bob", "second"))
    chain = AuthChain([first, second])
    req = request()
    assert chain.authenticate(req) == Identity("alice", "first")
    assert first.calls == [req]
    assert second.calls == []


def test_schemes_are_tried_in_order_until_one_answers() -> None:
    none_a = FakeScheme("a")
    none_b = FakeScheme("b")
    hit = FakeScheme("c", Identity("carol", "c"))
    after = FakeScheme("d", Identity("dave", "d"))
    chain = AuthChain([none_a, none_b, hit, after])
    req = request()
    assert chain.authenticate(req) == Identity("carol", "c")
    assert [len(s.calls) for s in (none_a, none_b, hit, after)] == [1, 1, 1, 0]
    assert none_a.calls == [req]


def test_order_is_the_given_order() -> None:
    a = FakeScheme("a", Identity("alice", "a"))
    b = FakeScheme("b", Identity("bob", "b"))
    assert AuthChain([b, a]).authenticate(request()) == Identity("bob", "b")
    assert a.calls == []


def test_failure_stops_the_chain() -> None:
    failing = FakeScheme("bearer", AuthenticationFailed("bearer: expired"))
    fallback = FakeScheme("anonymous", Identity("guest", "anonymous"))
    chain = AuthChain([failing, fallback])
    with pytest.raises(AuthenticationFailed) as info:
        chain.authenticate(request())
    assert str(info.value) == "bearer: expired"
    assert len(failing.calls) == 1
    assert fallback.calls == []


def test_failure_after_a_none_propagates() -> None:
    skipped = FakeScheme("a")
    failing = FakeScheme("b", AuthenticationFailed())
    never = FakeScheme("c", Identity("x", "c"))
    with pytest.raises(AuthenticationFailed):
        AuthChain([skipped, failing, never]).authenticate(request())
    assert [len(s.calls) for s in (skipped, failing, never)] == [1, 1, 0]


def test_all_none_gives_none() -> None:
    schemes = [FakeScheme("a"), FakeScheme("b"), FakeScheme("c")]
    assert AuthChain(schemes).authenticate(request()) is None
    assert all(len(s.calls) == 1 for s in schemes)


def test_empty_chain() -> None:
    chain = AuthChain([])
    assert chain.authenticate(request()) is None
    assert chain.challenges == ()
    assert chain.get("basic") is None


def test_challenges_in_order_skipping_none() -> None:
    chain = AuthChain(
        [
            FakeScheme("bearer", challenge='Bearer realm="app"'),
            FakeScheme("session", challenge=None),
            FakeScheme("empty", challenge=""),
            FakeScheme("basic", challenge='Basic realm="app", charset="UTF-8"'),
        ]
    )
    assert chain.challenges == ('Bearer realm="app"', 'Basic realm="app", charset="UTF-8"')


def test_get_by_name() -> None:
    a, b = FakeScheme("bearer"), FakeScheme("basic")
    chain = AuthChain([a, b])
    assert chain.get("basic") is b
    assert chain.get("bearer") is a
    assert chain.get("digest") is None
    assert chain.get("BASIC") is None


def test_schemes_are_kept_as_a_tuple() -> None:
    schemes = [FakeScheme("a")]
    chain = AuthChain(schemes)
    schemes.append(FakeScheme("b"))
    assert len(chain.schemes) == 1
    assert isinstance(chain.schemes, tuple)


# --- with the real schemes --------------------------------------------------------------------


@pytest.fixture
def real_chain(hasher: PasswordHasher, password_hashes: dict[str, str]) -> AuthChain:
    return AuthChain(
        [
            BearerScheme(GuardSettings(jwt_secret=JWT_SECRET), realm="app"),
            BasicScheme(password_hashes.get, hasher, realm="app"),
        ]
    )


def test_real_schemes_each_answer_their_own_header(real_chain: AuthChain) -> None:
    bearer_scheme = real_chain.get("bearer")
    assert isinstance(bearer_scheme, BearerScheme)
    token = bearer_scheme.create_token("bob")
    by_token = real_chain.authenticate(request(bearer(token)))
    assert by_token is not None
    assert (by_token.login, by_token.scheme) == ("bob", "bearer")
    by_password = real_chain.authenticate(request(basic("alice", PASSWORDS["alice"])))
    assert by_password == Identity("alice", "basic")
    assert real_chain.authenticate(request()) is None
    assert real_chain.challenges == (
        'Bearer realm="app"',
        'Basic realm="app", charset="UTF-8"',
    )


def test_real_bad_token_is_a_failure_not_anonymous(real_chain: AuthChain) -> None:
    with pytest.raises(AuthenticationFailed):
        real_chain.authenticate(request(bearer("not-a-token")))
