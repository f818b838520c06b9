"""loading.py: GUARD_MODEL / GUARD_POLICY turned into a PolicyEngine."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

from flask_casbin_guard.authz.engine import PolicyEngine
from flask_casbin_guard.config import GuardSettings
from flask_casbin_guard.errors import ConfigurationError, PolicyError
from flask_casbin_guard.loading import (
    check_unsupported,
    load_engine,
    load_policy,
    packaged_model,
    read_model,
)
from flask_casbin_guard.store.csv import PolicyRow

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "flask_casbin_guard"
POLICIES = Path(__file__).parent / "policies"
WriteFile = Callable[[str, str], str]

MODEL_TEXT = (POLICIES / "rbac_model.conf").read_text(encoding="utf-8")


# --- packaged files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.conf", "policy.csv"])
def test_packaged_files_are_identical_to_the_repository_root(name: str) -> None:
    assert (PACKAGE / name).read_bytes() == (REPO / name).read_bytes()
    installed = resources.files("flask_casbin_guard").joinpath(name).read_bytes()
    assert installed == (REPO / name).read_bytes()


def test_packaged_model_is_the_root_model() -> None:
    assert packaged_model() == (REPO / "model.conf").read_text(encoding="utf-8")
    assert "[request_definition]" in packaged_model()


# --- read_model -----------------------------------------------------------------------------


def test_read_model_none_is_the_packaged_model(tmp_path: Path) -> None:
    text, source = read_model(None, str(tmp_path))
    assert text == (REPO / "model.conf").read_text(encoding="utf-8")
    assert "packaged" in source


def test_read_model_text_is_used_as_text(tmp_path: Path) -> None:
    text, source = read_model(MODEL_TEXT, str(tmp_path))
    assert text == MODEL_TEXT
    assert source == "GUARD_MODEL text"
    one_line = "[request_definition] r = sub"
    assert read_model(one_line, str(tmp_path)) == (one_line, "GUARD_MODEL text")


def test_read_model_relative_path_is_resolved_against_root(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "m.conf").write_text(MODEL_TEXT, encoding="utf-8")
    text, source = read_model("conf/m.conf", str(tmp_path))
    assert text == MODEL_TEXT
    assert str(tmp_path / "conf" / "m.conf") in source


def test_read_model_absolute_path(tmp_path: Path) -> None:
    text, _ = read_model(str(POLICIES / "rbac_model.conf"), str(tmp_path))
    assert text == MODEL_TEXT


def test_read_model_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        read_model("missing.conf", str(tmp_path))
    assert "GUARD_MODEL" in str(info.value)
    assert str(tmp_path / "missing.conf") in str(info.value)


def test_read_model_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "dir.conf").mkdir()
    with pytest.raises(ConfigurationError, match="GUARD_MODEL"):
        read_model("dir.conf", str(tmp_path))


# --- load_engine ----------------------------------------------------------------------------


def test_load_engine_with_relative_policy_path(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "p.csv").write_text(
        "# x\np, alice, data1, read\ng, bob, alice_role\np, alice_role, data2, write\n",
        encoding="utf-8",
    )
    (tmp_path / "m.conf").write_text(MODEL_TEXT, encoding="utf-8")
    engine = load_engine(GuardSettings(model="m.conf", policy="data/p.csv"), str(tmp_path))
    assert isinstance(engine, PolicyEngine)
    assert engine.rows == (
        PolicyRow("p", ("alice", "data1", "read")),
        PolicyRow("g", ("bob", "alice_role")),
        PolicyRow("p", ("alice_role", "data2", "write")),
    )
    assert engine.enforce("alice", "data1", "read") is True
    assert engine.enforce("bob", "data2", "write") is True
    assert engine.enforce("bob", "data1", "read") is False


def test_load_engine_default_model_and_test_policy(tmp_path: Path) -> None:
    settings = GuardSettings(policy=str(POLICIES / "rbac_policy.csv"))
    engine = load_engine(settings, str(tmp_path))
    assert engine.model_text == packaged_model()
    assert engine.has_role("carol", "employee") is True
    assert engine.enforce("carol", "store:1", "manager") is True
    assert engine.enforce("alice", "store:1", "manager") is False


def test_load_engine_without_policy_is_empty(tmp_path: Path) -> None:
    engine = load_engine(GuardSettings(), str(tmp_path))
    assert engine.rows == ()
    assert engine.enforce("alice", "anything", "GET") is False


def test_load_engine_missing_policy_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_engine(GuardSettings(policy="nope.csv"), str(tmp_path))
    assert "GUARD_POLICY" in str(info.value)
    assert str(tmp_path / "nope.csv") in str(info.value)


def test_load_engine_policy_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "policy.csv").mkdir()
    with pytest.raises(PolicyError, match="policy.csv"):
        load_engine(GuardSettings(policy="policy.csv"), str(tmp_path))


def test_load_engine_from_a_sqlite_database_in_the_instance_folder(
    tmp_path: Path, write_file: WriteFile
) -> None:
    seed = write_file("seed.csv", "g, alice, employee\np, employee, store:1, read\n")
    settings = GuardSettings(policy="sqlite:///guard.db", policy_seed=seed)
    engine = load_engine(settings, str(tmp_path), instance_path=str(tmp_path / "instance"))
    assert (tmp_path / "instance" / "guard.db").is_file()
    assert engine.enforce("alice", "store:1", "read")
    # Seeding happens once, into an empty store: a second start does not duplicate rows.
    again = load_engine(settings, str(tmp_path), instance_path=str(tmp_path / "instance"))
    assert len(again.rows) == 2


@pytest.mark.parametrize("url", ["redis://x", "nosuchdb://user:s3cret@host/db"])
def test_load_engine_refuses_other_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_engine(GuardSettings(policy=url), str(tmp_path))
    assert "s3cret" not in str(info.value)


def test_load_policy_sources(tmp_path: Path) -> None:
    empty = load_policy(GuardSettings(), str(tmp_path), str(tmp_path))
    assert (empty.store, empty.version, empty.rows) == (None, None, [])
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.csv").write_text("g, alice, employee\n")
    relative = load_policy(GuardSettings(policy="a/b.csv"), str(tmp_path), str(tmp_path))
    absolute = load_policy(
        GuardSettings(policy=str(tmp_path / "a" / "b.csv")), "/nonexistent", str(tmp_path)
    )
    for loaded in (relative, absolute):
        assert loaded.store is not None and loaded.store.url == str(tmp_path / "a" / "b.csv")
        assert [row.values for row in loaded.rows] == [("alice", "employee")]
        assert loaded.version == loaded.store.version()


def test_load_engine_bad_row_names_file_and_line(write_file: WriteFile, tmp_path: Path) -> None:
    path = write_file("bad.csv", "p, alice, data1, read\n# comment\n\np, bob, data2\n")
    with pytest.raises(PolicyError) as info:
        load_engine(GuardSettings(policy="bad.csv"), str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"{path}, line 4: ")
    assert "take 3 values" in message


def test_load_engine_checks_rows_against_the_model_arities(
    write_file: WriteFile, tmp_path: Path
) -> None:
    basic = MODEL_TEXT.replace("[role_definition]\ng = _, _\n", "").replace(
        "g(r.sub, p.sub)", "r.sub == p.sub"
    )
    write_file("roles.csv", "p, alice, data1, read\ng, alice, admin\n")
    with pytest.raises(PolicyError, match=r"line 2: unknown policy type 'g'"):
        load_engine(GuardSettings(model=basic, policy="roles.csv"), str(tmp_path))


def test_load_engine_invalid_model_is_a_policy_error(tmp_path: Path) -> None:
    (tmp_path / "m.conf").write_text("[request_definition]\nr = sub\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="policy_definition"):
        load_engine(GuardSettings(model="m.conf"), str(tmp_path))


def test_load_engine_passes_custom_functions(write_file: WriteFile, tmp_path: Path) -> None:
    model = MODEL_TEXT.replace("r.obj == p.obj", "startsWith(r.obj, p.obj)")
    write_file("p.csv", "p, alice, /docs, read\n")

    def starts_with(value: str, prefix: str) -> bool:
        return value.startswith(prefix)

    engine = load_engine(
        GuardSettings(model=model, policy="p.csv"),
        str(tmp_path),
        functions={"startsWith": starts_with},
    )
    assert engine.enforce("alice", "/docs/readme", "read") is True
    assert engine.enforce("alice", "/src", "read") is False


# --- check_unsupported ----------------------------------------------------------------------


def test_check_unsupported_accepts_plain_settings() -> None:
    check_unsupported(GuardSettings())
    check_unsupported(GuardSettings(policy="policy.csv"))


def test_check_unsupported_refuses_a_watcher_for_now() -> None:
    with pytest.raises(ConfigurationError, match="GUARD_WATCHER"):
        check_unsupported(GuardSettings(watcher="redis://localhost"))


def test_check_unsupported_refuses_a_seed_without_a_database() -> None:
    with pytest.raises(ConfigurationError, match="GUARD_POLICY_SEED"):
        check_unsupported(GuardSettings(policy_seed="seed.csv"))
    with pytest.raises(ConfigurationError, match="GUARD_POLICY_SEED"):
        check_unsupported(GuardSettings(policy="policy.csv", policy_seed="seed.csv"))
    check_unsupported(GuardSettings(policy="sqlite:///x.db", policy_seed="seed.csv"))
