"""Identity and the login safety check used before anything reaches Casbin or a log."""

from __future__ import annotations

import dataclasses

import pytest

from flask_casbin_guard.identity import Identity, is_safe_login


def test_identity_fields() -> None:
    identity = Identity("alice", "bearer", {"sub": "alice", "scope": "read"})
    assert identity.login == "alice"
    assert identity.scheme == "bearer"
    assert identity.claims == {"sub": "alice", "scope": "read"}


def test_identity_is_frozen() -> None:
    identity = Identity("alice", "basic")
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.login = "admin"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.scheme = "bearer"  # type: ignore[misc]
    assert identity.login == "alice"


def test_identity_has_no_instance_dict() -> None:
    """slots=True: no way around the frozen check through ``__dict__``."""
    identity = Identity("alice", "basic")
    assert not hasattr(identity, "__dict__")


def test_default_claims_are_empty_and_read_only() -> None:
    identity = Identity("alice", "basic")
    assert dict(identity.claims) == {}
    with pytest.raises(TypeError):
        identity.claims["sub"] = "admin"  # type: ignore[index]


def test_identities_compare_by_value() -> None:
    assert Identity("alice", "basic") == Identity("alice", "basic")
    assert Identity("alice", "basic") != Identity("alice", "bearer")
    assert Identity("alice", "basic") != Identity("bob", "basic")


@pytest.mark.parametrize(
    "login",
    [
        "a",
        "alice",
        "alice@example.com",
        "john doe",  # inner spaces are printable and harmless
        "Zoë",
        "Ærøskøbing",
        "用户",
        "пользователь",
        "user:name",
        "a" * 255,
    ],
)
def test_safe_logins(login: str) -> None:
    assert is_safe_login(login) is True


@pytest.mark.parametrize(
    "login",
    [
        "",
        "a" * 256,
        "a,b",
        ",",
        "admin,",
        "alice\nadmin",
        "alice\r\n",
        "\n",
        "al\tice",
        "alice\x00",
        "\x1b[31mred",
        "alice\x7f",
        "alice\u2028bob",  # unicode line separator
        "\u200balice",  # zero-width space (format character)
        " alice",
        "alice ",
        " ",
        "\u00a0alice",  # non-breaking space
    ],
)
def test_unsafe_logins(login: str) -> None:
    assert is_safe_login(login) is False


def test_max_length_is_configurable() -> None:
    assert is_safe_login("abcde", max_length=5) is True
    assert is_safe_login("abcdef", max_length=5) is False


def test_length_counts_characters_not_bytes() -> None:
    login = "é" * 255  # 510 bytes in UTF-8
    assert is_safe_login(login) is True
    assert is_safe_login(login + "é") is False
