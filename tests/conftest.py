"""Shared fixtures: a real policy on disk, real argon2 hashes, apps in both attach styles."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from flask_casbin_guard.authn.passwords import PasswordHasher
from helpers import JWT_SECRET

POLICIES = Path(__file__).parent / "policies"

#: Casbin's own example models and policies, in shared/ beside the repository (tests that read
#: them skip when it is absent); GUARD_CASBIN_EXAMPLES points elsewhere.
CASBIN_EXAMPLES = Path(
    os.environ.get(
        "GUARD_CASBIN_EXAMPLES",
        Path(__file__).resolve().parents[2] / "shared" / "casbin-examples",
    )
)

#: demo logins and passwords used across the tests
PASSWORDS = {
    "alice": "alice-password",
    "bob": "bob-password",
    "carol": "carol-password",
    "dave": "dave-password",
    "employee": "employee-password",  # a login that collides with a role name
}


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="session")
def password_hashes(hasher: PasswordHasher) -> dict[str, str]:
    """argon2id hashes of :data:`PASSWORDS`, computed once (each costs ~40 ms)."""
    return {login: hasher.hash(password) for login, password in PASSWORDS.items()}


@pytest.fixture
def guard_config(password_hashes: dict[str, str], tmp_path: Path) -> dict[str, object]:
    """A working ``GUARD_*`` configuration on the test RBAC policy."""
    return {
        "TESTING": True,
        # Revocations persist: each test gets its own file, not the tests' instance folder.
        "GUARD_REVOCATION_STORE": str(tmp_path / "revocations.db"),
        "GUARD_MODEL": str(POLICIES / "rbac_model.conf"),
        "GUARD_POLICY": str(POLICIES / "rbac_policy.csv"),
        "GUARD_JWT_SECRET": JWT_SECRET,
        "GUARD_GET_USER_PASS": password_hashes.get,
    }


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], str]:
    """Write ``text`` to ``tmp_path/name`` and return its path."""

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def services_required() -> bool:
    """CI sets GUARD_REQUIRE_SERVICES=1: tests needing PostgreSQL/Redis must not skip there."""
    return os.environ.get("GUARD_REQUIRE_SERVICES") == "1"


#: libpq URL of the PostgreSQL server for tests; each test gets its own database on it
POSTGRES_ADMIN_URL = os.environ.get(
    "GUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_service(name: str, error: BaseException) -> NoReturn:
    """Skip when a local service is absent, but fail when GUARD_REQUIRE_SERVICES=1."""
    message = f"{name} is not reachable: {type(error).__name__}: {error}"
    if services_required():
        pytest.fail(f"{message} (GUARD_REQUIRE_SERVICES=1: the services are required)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL to a new, empty PostgreSQL database, dropped after the test.

    A database per test keeps tests independent and leaves nothing behind on the server.
    """
    from sqlalchemy.engine import make_url

    try:
        import psycopg
        from psycopg import sql
    except ImportError as error:
        require_service("PostgreSQL (its driver psycopg)", error)

    name = f"guard_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        shown = make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
        require_service(f"PostgreSQL at {shown}", error)
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        # FORCE: a connection a failed test left open must not keep the database alive.
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
