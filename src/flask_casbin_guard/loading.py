"""Build a :class:`PolicyEngine` from the ``GUARD_MODEL`` / ``GUARD_POLICY`` settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .authz.engine import PolicyEngine, model_arities, parse_model
from .config import GuardSettings
from .errors import ConfigurationError, PolicyError
from .store.csv import read_policy_file

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
        return path.read_text(encoding="utf-8"), repr(str(path))
    except OSError as error:
        raise ConfigurationError(f"GUARD_MODEL: cannot read {str(path)!r}: {error}") from None


def policy_path(settings: GuardSettings, root_path: str) -> Path | None:
    """The CSV file ``GUARD_POLICY`` names, or ``None`` for an empty policy."""
    if settings.policy is None:
        return None
    if "://" in settings.policy:
        raise ConfigurationError(
            "GUARD_POLICY: database policy stores are not available in this version; "
            "give the path of a CSV file"
        )
    return Path(root_path, settings.policy)


def check_unsupported(settings: GuardSettings) -> None:
    """Refuse settings this version cannot honour rather than silently ignoring them."""
    if settings.watcher is not None:
        raise ConfigurationError("GUARD_WATCHER needs a database policy store (not available yet)")
    if settings.policy_seed is not None:
        raise ConfigurationError("GUARD_POLICY_SEED needs a database policy store")


def load_engine(
    settings: GuardSettings,
    root_path: str,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> PolicyEngine:
    """Read and validate the model and the policy.

    :raises PolicyError: naming the file and line of the first invalid row.
    """
    text, source = read_model(settings.model, root_path)
    arities = model_arities(parse_model(text, source))
    path = policy_path(settings, root_path)
    if path is not None and not path.is_file():
        raise PolicyError(f"GUARD_POLICY: no policy file at {str(path)!r}")
    if path is None:
        log.warning("GUARD_POLICY is not set: the policy is empty and every Casbin check denies")
    rows = read_policy_file(path, arities) if path is not None else []
    return PolicyEngine(text, rows, source=source, functions=functions)
