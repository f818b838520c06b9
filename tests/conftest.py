"""Shared fixtures: a real policy on disk, real argon2 hashes, apps in both attach styles.

A new test should not build an app by hand: ``guarded`` is an app in each attach style (the
``Flask`` subclass with ``authorize=`` and a plain ``flask.Flask`` with ``CasbinGuard``), on the
test RBAC policy; ``guarded.route`` declares a view the same way in both styles and
``guarded.login(scheme, user)`` gives the request headers of that user for a scheme. Tests are
marked ``services`` (PostgreSQL, Redis, private servers) and ``slow`` (processes, servers, big
fuzzing runs) here, by what they use, so ``make check`` can leave them out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import flask
import pytest
from flask.testing import FlaskClient

from flask_casbin_guard import CasbinGuard, Flask
from flask_casbin_guard.authn.passwords import PasswordHasher
from helpers import JWT_SECRET, basic, bearer

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


# -- markers by what a test uses ------------------------------------------------------------------
#: fixtures that reach PostgreSQL or Redis, shared or private
SERVICE_FIXTURES = frozenset(
    {"postgres_url", "redis_url", "private_postgres", "private_redis", "pg"}
)
#: parameter values of tests that pick a service at run time (``request.getfixturevalue``)
SERVICE_PARAMS = frozenset({"postgres", "postgresql", "redis"})
#: modules that start servers or worker processes: they run alone in `make test` (``serial``),
#: since their deadlines assume the machine is not also running other tests
SERIAL_MODULES = ("tests/e2e/", "tests/faults/", "tests/security/test_canonicalization.py")
#: words in the names of tests elsewhere that start servers or processes, or compare timings
SERIAL_WORDS = (
    "several_processes",
    "racing_processes",
    "through_gunicorn",
    "concurrent_",
    "take_the_same_time",
    "answers_alike",
    "costs_what",
    "bounded_time",
    "linear_time",
    "constant_time",
)
#: modules that fuzz or compare at length (``slow``: left out by `make check`)
SLOW_MODULES = (
    *SERIAL_MODULES,
    "tests/security/test_fuzz_acme.py",
    "tests/security/test_supply_chain.py",
    "tests/test_engine_differential.py",
)
#: words in the names of tests that run big data sets or long hypothesis searches
SLOW_WORDS = (
    *SERIAL_WORDS,
    "million",
    "20000",
    "swept_once_expired",
    "reloading_in_a_loop",
    "translation_matches_where_python_does",
    "chains_answer_as_pycasbin",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        callspec = getattr(item, "callspec", None)
        params = {str(value) for value in callspec.params.values()} if callspec else set()
        if (
            SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
            or SERVICE_PARAMS & params
            or where.startswith("tests/faults/")
        ):
            item.add_marker(pytest.mark.services)
        if where.startswith(SLOW_MODULES) or any(word in item.name for word in SLOW_WORDS):
            item.add_marker(pytest.mark.slow)
        if where.startswith(SERIAL_MODULES) or any(word in item.name for word in SERIAL_WORDS):
            item.add_marker(pytest.mark.serial)


# -- apps in both attach styles ------------------------------------------------------------------
@dataclass
class Guarded:
    """An app under test and its guard, in one attach style."""

    app: flask.Flask
    guard: CasbinGuard
    style: str

    def route(self, rule: str, authorize: Any, **options: Any) -> Callable[[Any], Any]:
        """``@app.route(rule, authorize=...)`` or ``@app.route`` + ``@guard.authorize``."""
        authn = options.pop("authn", None)
        strict = options.pop("strict", False)

        def decorator(view: Any) -> Any:
            if self.style == "subclass":
                extra = {"authn": authn} if authn is not None else {}
                if strict:
                    extra["strict"] = strict
                subclass = cast(Flask, self.app)
                return subclass.route(rule, authorize=authorize, **extra, **options)(view)
            guarded = self.guard.authorize(authorize, authn=authn, strict=strict)(view)
            return self.app.route(rule, **options)(guarded)

        return decorator

    def login(self, scheme: str, user: str) -> dict[str, str]:
        """Request headers proving ``user`` by ``scheme`` (``basic`` or ``bearer``)."""
        if scheme == "basic":
            return basic(user, PASSWORDS[user])
        if scheme == "bearer":
            with self.app.app_context():
                return bearer(self.guard.create_token(user))
        raise ValueError(f"no test credentials for scheme {scheme!r}")

    def client(self) -> FlaskClient:
        return self.app.test_client()


@pytest.fixture
def make_guarded(guard_config: dict[str, object]) -> Callable[..., Guarded]:
    """``make_guarded(style, **config)``: an app in ``style`` on the test policy, ``config`` on top.

    In the extension style the guard attaches when the app is built, like ``init_app`` in a
    factory, so declare routes after setting the configuration.
    """

    def make(style: str = "subclass", **config: Any) -> Guarded:
        if style == "subclass":
            subclass = Flask(f"test_{style}")
            subclass.config.update(guard_config, **config)
            return Guarded(subclass, subclass.guard, style)
        if style == "extension":
            app = flask.Flask(f"test_{style}")
            app.config.update(guard_config, **config)
            return Guarded(app, CasbinGuard(app), style)
        raise ValueError(f"unknown attach style {style!r}")

    return make


@pytest.fixture(params=["subclass", "extension"])
def guarded(request: pytest.FixtureRequest, make_guarded: Callable[..., Guarded]) -> Guarded:
    """The test app in each attach style in turn (Basic and bearer enabled)."""
    return make_guarded(request.param, GUARD_AUTH=["bearer", "basic"])
