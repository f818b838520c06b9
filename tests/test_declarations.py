"""parse_declaration (authz/declarations.py): authorize= values checked at registration."""

from __future__ import annotations

from typing import Any

import pytest

from flask_casbin_guard.authz.declarations import (
    Declaration,
    ObjectPermission,
    parse_declaration,
)
from flask_casbin_guard.errors import ConfigurationError

EP = "shop.view"


def _error(spec: Any, endpoint: str = EP) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_declaration(spec, endpoint)
    message = str(info.value)
    assert repr(endpoint) in message
    return message


# --- single values --------------------------------------------------------------------------


def test_open() -> None:
    decl = parse_declaration("OPEN", EP)
    assert decl.open is True
    assert decl.close is False
    assert decl.route is False
    assert decl.roles == ()
    assert decl.objects == ()
    assert decl.needs_user is False
    assert decl.uses_policy is False
    assert decl.params == frozenset()
    assert decl.text == "'OPEN'"


def test_auth() -> None:
    decl = parse_declaration("AUTH", EP)
    assert (decl.open, decl.close, decl.route) == (False, False, False)
    assert decl.roles == ()
    assert decl.objects == ()
    assert decl.needs_user is True
    assert decl.uses_policy is False


def test_close() -> None:
    decl = parse_declaration("CLOSE", EP)
    assert decl.close is True
    assert decl.open is False
    assert decl.needs_user is False
    assert decl.uses_policy is False


def test_route() -> None:
    decl = parse_declaration("ROUTE", EP)
    assert decl.route is True
    assert decl.roles == ()
    assert decl.needs_user is True
    assert decl.uses_policy is True


@pytest.mark.parametrize("role", ["admin", "store_1_manager", "Admin", "OPENER", "data-reader"])
def test_role_string(role: str) -> None:
    decl = parse_declaration(role, EP)
    assert decl.roles == (role,)
    assert (decl.open, decl.close, decl.route) == (False, False, False)
    assert decl.needs_user is True
    assert decl.uses_policy is True


def test_object_permission_tuple() -> None:
    decl = parse_declaration(("store", "sid", "manager"), EP)
    assert decl.objects == (ObjectPermission("store", "sid", "manager"),)
    assert decl.roles == ()
    assert decl.params == frozenset({"sid"})
    assert decl.needs_user is True
    assert decl.uses_policy is True
    assert decl.text == "('store', 'sid', 'manager')"


@pytest.mark.parametrize("action", ["open", "auth", "close", "route", "OPEN"])
def test_reserved_words_are_fine_as_tuple_actions(action: str) -> None:
    decl = parse_declaration(("door", "did", action), EP)
    assert decl.objects == (ObjectPermission("door", "did", action),)
    assert decl.open is False


def test_reserved_word_is_fine_as_object_type() -> None:
    assert parse_declaration(("open", "oid", "read"), EP).objects[0].type == "open"


# --- lists ----------------------------------------------------------------------------------


def test_list_combines_every_kind_and_removes_duplicates() -> None:
    decl = parse_declaration(
        [
            "AUTH",
            "admin",
            ("store", "sid", "manager"),
            "ROUTE",
            "auditor",
            "admin",
            ("item", "iid", "delete"),
            ("store", "sid", "manager"),
            "ROUTE",
        ],
        EP,
    )
    assert decl.roles == ("admin", "auditor")
    assert decl.objects == (
        ObjectPermission("store", "sid", "manager"),
        ObjectPermission("item", "iid", "delete"),
    )
    assert decl.route is True
    assert (decl.open, decl.close) == (False, False)
    assert decl.params == frozenset({"sid", "iid"})
    assert decl.needs_user is True
    assert decl.uses_policy is True


def test_single_item_lists_equal_the_item() -> None:
    for spec in ("OPEN", "CLOSE", "AUTH", "ROUTE", "admin", ("a", "b", "c")):
        listed = parse_declaration([spec], EP)
        plain = parse_declaration(spec, EP)
        assert (listed.open, listed.close, listed.route) == (plain.open, plain.close, plain.route)
        assert (listed.roles, listed.objects) == (plain.roles, plain.objects)


def test_list_of_auth_only_uses_no_policy() -> None:
    decl = parse_declaration(["AUTH", "AUTH"], EP)
    assert decl.needs_user is True
    assert decl.uses_policy is False


def test_declaration_is_frozen() -> None:
    decl = parse_declaration("admin", EP)
    with pytest.raises(AttributeError):
        decl.open = True  # type: ignore[misc]
    assert isinstance(decl, Declaration)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [[], ""])
def test_empty_declarations_are_refused(spec: Any) -> None:
    _error(spec)


@pytest.mark.parametrize(
    "spec",
    [
        ["OPEN", "admin"],
        ["OPEN", "AUTH"],
        ["OPEN", "OPEN"],
        ["OPEN", ("store", "sid", "read")],
        ["CLOSE", "ROUTE"],
        ["admin", "CLOSE"],
        ["OPEN", "CLOSE"],
    ],
)
def test_open_and_close_stand_alone(spec: list[Any]) -> None:
    message = _error(spec)
    assert "cannot be combined" in message


@pytest.mark.parametrize(
    ("word", "suggestion"),
    [("open", "OPEN"), ("Auth", "AUTH"), ("close", "CLOSE"), ("Route", "ROUTE")],
)
def test_wrong_case_reserved_words_suggest_upper_case(word: str, suggestion: str) -> None:
    message = _error(word)
    assert f"did you mean {suggestion!r}" in message
    assert "did you mean" in _error(["admin", word])


def test_two_tuple_mentions_lists() -> None:
    message = _error(("store", "sid"))
    assert "(type, param, action)" in message
    assert "list" in message


@pytest.mark.parametrize(
    "spec",
    [
        ("store", "sid", "read", "extra"),
        ("store",),
        (),
        ("store", "sid", 1),
        ("store", None, "read"),
    ],
)
def test_malformed_tuples_are_refused(spec: tuple[Any, ...]) -> None:
    assert "(type, param, action)" in _error(spec)


@pytest.mark.parametrize("param", ["s-id", "1sid", "", "s id", "sid "])
def test_tuple_param_must_be_an_identifier(param: str) -> None:
    message = _error(("store", param, "manager"))
    assert repr(param) in message


@pytest.mark.parametrize(
    "spec",
    [
        ("", "sid", "read"),
        ("store", "sid", ""),
        ("st,ore", "sid", "read"),
        ("store", "sid", " read"),
        ("store", "sid", "re\nad"),
    ],
)
def test_tuple_type_and_action_must_be_clean_words(spec: tuple[str, str, str]) -> None:
    _error(spec)


@pytest.mark.parametrize(
    "spec",
    [" admin", "admin ", "ad,min", "ad\tmin", "\x00", ["admin", ""]],
)
def test_bad_role_strings_are_refused(spec: Any) -> None:
    assert "invalid declaration" in _error(spec)


@pytest.mark.parametrize("item", [1, None, {"role": "admin"}, ["admin"], 1.5, b"admin", {"admin"}])
def test_non_string_non_tuple_items_are_refused(item: Any) -> None:
    assert "cannot use" in _error(["AUTH", item])


@pytest.mark.parametrize("spec", [1, None, {"role": "admin"}, b"OPEN"])
def test_non_string_non_tuple_declarations_are_refused(spec: Any) -> None:
    _error(spec)


def test_errors_name_the_endpoint() -> None:
    _error("open", endpoint="api.items.delete")
    _error([], endpoint="other.endpoint")
