"""Open the policy store and build engines from the ``GUARD_MODEL`` / ``GUARD_POLICY`` settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .authz.engine import PolicyEngine, check_model, model_arities, parse_model
from .config import GuardSettings
from .errors import ConfigurationError, GuardError
from .store.base import PolicyStore
from .store.csv import PolicyRow, read_policy_file
from .store.csvstore import CsvStore
from .store.database import DatabaseStore

log = logging.getLogger("flask_casbin_guard")


def packaged_model() -> str:
    """The RBAC model shipped with the package."""
    return resources.files("flask_casbin_guard").joinpath("model.conf").read_text("utf-8")


def read_model(source: str | None, root_path: str) -> tuple[str, str]:
    """``(model text, description)`` from a ``GUARD_MODEL`` value."""
    if source is None:
        return packaged_model(), "packaged model.conf"
    if "\n" in source or "[request_definition]" in source:
        return source, "GUARD_MODEL text"
    path = Path(root_path, source)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"GUARD_MODEL: cannot read {str(path)!r}: {error}") from None
    try:
        return data.decode("utf-8-sig"), repr(str(path))
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        message = f"GUARD_MODEL {str(path)!r}, line {line}: not UTF-8 text"
        raise ConfigurationError(message) from None


def is_database(policy: str | None) -> bool:
    return policy is not None and "://" in policy


def database_url(url: str, instance_path: str) -> str:
    """Relative SQLite paths live in the app's instance folder, as with Flask-SQLAlchemy."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix and not url[len(prefix) :].startswith("/"):
        relative = url[len(prefix) :]
        if relative != ":memory:" and not relative.startswith("file:"):
            Path(instance_path).mkdir(parents=True, exist_ok=True)
            return prefix + str(Path(instance_path, relative))
    return url


def check_unsupported(settings: GuardSettings) -> None:
    """Refuse settings that cannot work together rather than silently ignoring them."""
    if settings.policy_seed is not None and not is_database(settings.policy):
        raise ConfigurationError("GUARD_POLICY_SEED needs a database GUARD_POLICY")
    if settings.watcher is not None and not is_database(settings.policy):
        raise ConfigurationError("GUARD_WATCHER needs a database GUARD_POLICY")


def open_store(
    settings: GuardSettings, arities: Mapping[str, int], root_path: str, instance_path: str
) -> PolicyStore | None:
    """The store ``GUARD_POLICY`` names (seeded once when empty), or ``None`` for no policy."""
    if settings.policy is None:
        log.warning("GUARD_POLICY is not set: the policy is empty and every Casbin check denies")
        return None
    if not is_database(settings.policy):
        return CsvStore(Path(root_path, settings.policy), arities)
    store = DatabaseStore(database_url(settings.policy, instance_path), arities)
    if settings.policy_seed is not None:
        _seed(store, Path(root_path, settings.policy_seed), arities)
    return store


def _seed(store: DatabaseStore, path: Path, arities: Mapping[str, int]) -> None:
    # Only an empty store that was never written to: a policy emptied on purpose stays empty.
    # Two processes seeding at once are harmless: the import skips rows already stored.
    if store.version() == 0 and not store.export():
        added = store.import_rows(read_policy_file(path, arities))
        log.info("seeded the policy store with %d rule(s) from %s", added, path.name)


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """The model and the policy rows read from the configured sources."""

    text: str
    source: str
    store: PolicyStore | None
    #: the store's version the rows were read at (``None`` without a store)
    version: int | None
    rows: list[PolicyRow]


def load_policy(settings: GuardSettings, root_path: str, instance_path: str) -> LoadedPolicy:
    """Read the model, open the store and read its rows, all validated.

    :raises PolicyError: naming the file and line (or table and id) of the first invalid row.
    """
    text, source = read_model(settings.model, root_path)
    model = parse_model(text, source)
    check_model(model, source)  # at load, not at the first decision
    arities = model_arities(model)
    store = open_store(settings, arities, root_path, instance_path)
    if store is None:
        return LoadedPolicy(text, source, None, None, [])
    try:
        version, rows = store.load_versioned(arities)
    except BaseException:
        store.close()
        raise
    return LoadedPolicy(text, source, store, version, rows)


def load_engine(
    settings: GuardSettings,
    root_path: str,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    instance_path: str | None = None,
) -> PolicyEngine:
    """The engine for these settings, its store closed (for scripts and tools)."""
    loaded = load_policy(settings, root_path, instance_path or root_path)
    if loaded.store is not None:
        loaded.store.close()
    return PolicyEngine(loaded.text, loaded.rows, source=loaded.source, functions=functions)


def diagnose_policy(
    settings: GuardSettings,
    root_path: str,
    instance_path: str,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> tuple[int, list[str]]:
    """How many rows the configured policy holds, and every problem that stops it loading.

    Loading stops at the first bad row; this names each one (file and line, or table and id),
    then checks the whole of the valid rows (a role cycle names its rows).
    """
    try:
        text, source = read_model(settings.model, root_path)
        model = parse_model(text, source)
        check_model(model, source)
        store = open_store(settings, model_arities(model), root_path, instance_path)
    except GuardError as error:
        return 0, [str(error)]
    if store is None:
        return 0, []
    try:
        rows, problems = store.diagnose(model_arities(model))
    except GuardError as error:
        return 0, [str(error)]
    finally:
        store.close()
    try:
        PolicyEngine(text, rows, source=source, functions=functions)
    except GuardError as error:
        problems.append(str(error))
    return len(rows) + len(problems), problems
