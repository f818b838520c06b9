"""GuardSettings.from_mapping: one typed check per GUARD_* key, unknown keys refused."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from flask_casbin_guard.config import JWT_ALGORITHMS, MAX_LEEWAY, GuardSettings
from flask_casbin_guard.errors import ConfigurationError


def settings(**keys: Any) -> GuardSettings:
    """Settings read from ``GUARD_<KEY>`` entries of a Flask-like mapping."""
    return GuardSettings.from_mapping({f"GUARD_{k.upper()}": v for k, v in keys.items()})


def refused(key: str, value: Any) -> ConfigurationError:
    """The ConfigurationError raised for ``GUARD_<KEY> = value``; it must name the key."""
    with pytest.raises(ConfigurationError) as info:
        settings(**{key: value})
    assert f"GUARD_{key.upper()}" in str(info.value)
    return info.value


# --- defaults and key handling -------------------------------------------------------------


def test_empty_mapping_gives_documented_defaults() -> None:
    s = GuardSettings.from_mapping({})
    assert s == GuardSettings()
    assert s.auth == ("bearer", "basic")
    assert s.model is None
    assert s.policy is None
    assert s.policy_seed is None
    assert s.get_user_pass is None
    assert s.jwt_secret is None
    assert s.jwt_algorithm == "HS256"
    assert s.jwt_public_key is None
    assert s.jwt_issuer is None
    assert s.jwt_audience is None
    assert s.jwt_expires == timedelta(hours=1)
    assert s.jwt_leeway == timedelta(seconds=10)
    assert s.watcher is None
    assert s.default_authorize is None
    assert s.default_roles == ()
    assert s.mode == "prod"
    assert s.open_static is True
    assert s.realm is None


def test_non_guard_keys_are_ignored() -> None:
    config = {
        "SECRET_KEY": 123,  # wrong type for anything of ours: must not even be looked at
        "DEBUG": True,
        "JWT_SECRET": "",
        "MY_GUARD_MODE": "nonsense",
        "guard_mode": "nonsense",  # prefix is case-sensitive, like Flask config keys
    }
    assert GuardSettings.from_mapping(config) == GuardSettings()


def test_settings_are_frozen() -> None:
    s = GuardSettings()
    with pytest.raises(AttributeError):
        s.mode = "dev"  # type: ignore[misc]


def test_unknown_guard_key_is_rejected_with_hint() -> None:
    with pytest.raises(ConfigurationError) as info:
        GuardSettings.from_mapping({"GUARD_JWT_SECRT": "x" * 40})
    message = str(info.value)
    assert "'GUARD_JWT_SECRT'" in message
    assert "did you mean GUARD_JWT_SECRET?" in message


def test_unknown_guard_key_hint_for_missing_prefix_part() -> None:
    with pytest.raises(ConfigurationError, match="did you mean GUARD_JWT_AUDIENCE"):
        GuardSettings.from_mapping({"GUARD_AUDIENCE": "api"})


def test_unknown_guard_key_without_close_match_has_no_hint() -> None:
    with pytest.raises(ConfigurationError) as info:
        GuardSettings.from_mapping({"GUARD_XYZZY": 1})
    assert "GUARD_XYZZY" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_unknown_key_is_rejected_even_next_to_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="GUARD_MOD"):
        GuardSettings.from_mapping({"GUARD_MODE": "dev", "GUARD_MOD": "dev"})


def test_overrides_use_field_names_and_win_over_config() -> None:
    s = GuardSettings.from_mapping(
        {"GUARD_MODE": "prod", "GUARD_REALM": "from-config"},
        overrides={"mode": "dev", "jwt_leeway": 30},
    )
    assert s.mode == "dev"
    assert s.realm == "from-config"
    assert s.jwt_leeway == timedelta(seconds=30)


def test_overrides_are_type_checked() -> None:
    with pytest.raises(ConfigurationError, match="GUARD_MODE"):
        GuardSettings.from_mapping({}, overrides={"mode": "staging"})


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="'jwt_secrt'"):
        GuardSettings.from_mapping({}, overrides={"jwt_secrt": "x"})


def test_override_with_prefixed_key_name_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        GuardSettings.from_mapping({}, overrides={"GUARD_MODE": "dev"})


# --- GUARD_AUTH / GUARD_DEFAULT_ROLES (lists of names) --------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["basic"], ("basic",)),
        (("basic", "bearer"), ("basic", "bearer")),
        ("bearer", ("bearer",)),
        ([], ()),
        ((), ()),
    ],
)
def test_auth_accepts_names(value: Any, expected: tuple[str, ...]) -> None:
    assert settings(auth=value).auth == expected


@pytest.mark.parametrize("value", [None, "", [""], ["basic", 1], {"basic"}, 7, ["basic", None]])
def test_auth_rejects_non_names(value: Any) -> None:
    refused("auth", value)


def test_auth_rejects_duplicates() -> None:
    assert "twice" in str(refused("auth", ["basic", "basic"]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["admin", "user"], ("admin", "user")), ("user", ("user",)), ((), ())],
)
def test_default_roles_accepts_names(value: Any, expected: tuple[str, ...]) -> None:
    assert settings(default_roles=value).default_roles == expected


@pytest.mark.parametrize("value", [None, "", [""], [1], ["a", "a"], 3])
def test_default_roles_rejects_bad_values(value: Any) -> None:
    refused("default_roles", value)


# --- optional non-empty strings ---------------------------------------------------------------

STRING_KEYS = ["model", "policy", "policy_seed", "jwt_issuer", "watcher", "realm"]


@pytest.mark.parametrize("key", STRING_KEYS)
def test_optional_strings_accept_text_and_none(key: str) -> None:
    assert getattr(settings(**{key: "some value"}), key) == "some value"
    assert getattr(settings(**{key: None}), key) is None


@pytest.mark.parametrize("key", STRING_KEYS)
@pytest.mark.parametrize("value", ["", "   ", 5, b"bytes", ["x"]])
def test_optional_strings_reject_other_values(key: str, value: Any) -> None:
    refused(key, value)


# --- key material -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["jwt_secret", "jwt_public_key"])
@pytest.mark.parametrize("value", ["text-key", b"\x00\x01binary-key"])
def test_key_material_accepts_str_and_bytes(key: str, value: str | bytes) -> None:
    assert getattr(settings(**{key: value}), key) == value


@pytest.mark.parametrize("key", ["jwt_secret", "jwt_public_key"])
@pytest.mark.parametrize("value", ["", b"", 12345, ["k"], bytearray(b"key")])
def test_key_material_rejects_empty_and_other_types(key: str, value: Any) -> None:
    refused(key, value)


# --- callables and free-form values -------------------------------------------------------


def test_get_user_pass_accepts_callable_and_none() -> None:
    store = {"alice": "hash"}
    assert settings(get_user_pass=store.get).get_user_pass == store.get
    assert settings(get_user_pass=None).get_user_pass is None


@pytest.mark.parametrize("value", ["alice", {"alice": "hash"}, 1])
def test_get_user_pass_rejects_non_callables(value: Any) -> None:
    refused("get_user_pass", value)


def test_default_authorize_is_passed_through() -> None:
    marker = object()
    assert settings(default_authorize=marker).default_authorize is marker


# --- JWT algorithm ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(JWT_ALGORITHMS))
def test_every_allowlisted_algorithm_is_accepted(algorithm: str) -> None:
    assert settings(jwt_algorithm=algorithm).jwt_algorithm == algorithm


def test_allowlist_never_contains_none() -> None:
    assert not {a.lower() for a in JWT_ALGORITHMS} & {"none", ""}


@pytest.mark.parametrize("value", ["none", "None", "NONE", "hs256", "HS1", "", None, 256])
def test_algorithm_outside_allowlist_is_rejected(value: Any) -> None:
    assert repr(value) in str(refused("jwt_algorithm", value))


def test_algorithm_given_as_list_is_a_configuration_error() -> None:
    """PyJWT takes ``algorithms=[...]``: a list here is a plausible mistake, not a crash."""
    refused("jwt_algorithm", ["HS256"])


# --- JWT audience -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("api", "api"), (["api", "web"], ("api", "web")), (("api",), ("api",)), (None, None)],
)
def test_audience_accepts_one_or_several(value: Any, expected: Any) -> None:
    assert settings(jwt_audience=value).jwt_audience == expected


@pytest.mark.parametrize("value", ["", " ", [""], ["api", "api"], 5, [5], {"api"}])
def test_audience_rejects_bad_values(value: Any) -> None:
    refused("jwt_audience", value)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3600, timedelta(hours=1)),
        (1, timedelta(seconds=1)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=15), timedelta(minutes=15)),
    ],
)
def test_expires_accepts_seconds_or_timedelta(value: Any, expected: timedelta) -> None:
    result = settings(jwt_expires=value).jwt_expires
    assert isinstance(result, timedelta)
    assert result == expected


@pytest.mark.parametrize(
    "value", [0, -1, timedelta(0), timedelta(seconds=-1), True, False, "3600", None]
)
def test_expires_rejects_non_positive_and_wrong_types(value: Any) -> None:
    refused("jwt_expires", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, timedelta(0)),
        (30, timedelta(seconds=30)),
        (300, MAX_LEEWAY),
        (timedelta(minutes=5), MAX_LEEWAY),
        (timedelta(seconds=2), timedelta(seconds=2)),
    ],
)
def test_leeway_accepts_up_to_five_minutes(value: Any, expected: timedelta) -> None:
    assert settings(jwt_leeway=value).jwt_leeway == expected


def test_max_leeway_is_five_minutes() -> None:
    assert timedelta(minutes=5) == MAX_LEEWAY


@pytest.mark.parametrize(
    "value", [301, 300.001, timedelta(minutes=5, microseconds=1), timedelta(hours=1)]
)
def test_leeway_over_five_minutes_is_rejected(value: Any) -> None:
    assert "300 seconds" in str(refused("jwt_leeway", value))


@pytest.mark.parametrize("value", [-1, timedelta(seconds=-1), True, "10", None])
def test_leeway_rejects_negative_and_wrong_types(value: Any) -> None:
    refused("jwt_leeway", value)


@pytest.mark.parametrize("key", ["jwt_expires", "jwt_leeway"])
@pytest.mark.parametrize("value", [math.nan, math.inf, 10**20])
def test_unrepresentable_durations_are_configuration_errors(key: str, value: Any) -> None:
    """NaN, infinity and absurd numbers must give a ConfigurationError, not a raw crash."""
    refused(key, value)


# --- mode and open_static ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["prod", "dev"])
def test_mode_accepts_prod_and_dev(mode: str) -> None:
    assert settings(mode=mode).mode == mode


@pytest.mark.parametrize("value", ["production", "DEV", "", None, ["prod"]])
def test_mode_rejects_other_values(value: Any) -> None:
    refused("mode", value)


@pytest.mark.parametrize("value", [True, False])
def test_open_static_accepts_booleans(value: bool) -> None:
    assert settings(open_static=value).open_static is value


@pytest.mark.parametrize("value", [1, 0, "true", "False", None])
def test_open_static_rejects_truthy_non_booleans(value: Any) -> None:
    refused("open_static", value)


def test_full_configuration_is_read() -> None:
    getter = {"alice": "h"}.get
    s = GuardSettings.from_mapping(
        {
            "GUARD_AUTH": ["basic"],
            "GUARD_MODEL": "model.conf",
            "GUARD_POLICY": "policy.csv",
            "GUARD_GET_USER_PASS": getter,
            "GUARD_JWT_SECRET": "s" * 32,
            "GUARD_JWT_ALGORITHM": "HS384",
            "GUARD_JWT_ISSUER": "https://issuer.example",
            "GUARD_JWT_AUDIENCE": ["api"],
            "GUARD_JWT_EXPIRES": 600,
            "GUARD_JWT_LEEWAY": timedelta(seconds=5),
            "GUARD_DEFAULT_ROLES": ["user"],
            "GUARD_MODE": "dev",
            "GUARD_OPEN_STATIC": False,
            "GUARD_REALM": "shop",
        }
    )
    assert s == GuardSettings(
        auth=("basic",),
        model="model.conf",
        policy="policy.csv",
        get_user_pass=getter,
        jwt_secret="s" * 32,
        jwt_algorithm="HS384",
        jwt_issuer="https://issuer.example",
        jwt_audience=("api",),
        jwt_expires=timedelta(minutes=10),
        jwt_leeway=timedelta(seconds=5),
        default_roles=("user",),
        mode="dev",
        open_static=False,
        realm="shop",
    )
