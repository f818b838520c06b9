"""The SQL side of the user store: tables, records, input checks, transactions, key format.

The tables live beside ``casbin_rule`` in the policy database, so one backup, one connection
pool and one set of credentials cover policies and users alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Insert,
    MetaData,
    Select,
    String,
    Table,
    insert,
    inspect,
    literal,
    select,
)
from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from ..errors import ConfigurationError, PolicyError
from ..identity import is_safe_login
from .schema import describe_error, is_memory_sqlite, mask_url

T = TypeVar("T")

USERS_TABLE = "guard_users"
API_KEYS_TABLE = "guard_api_keys"
REVOKED_TABLE = "guard_revoked_tokens"

#: longest login, password hash and key name the tables hold
MAX_TEXT = 255
#: longest ``jti`` stored as given; longer ones are stored as their SHA-256 (64 hex digits)
MAX_JTI = 64

#: what every API key starts with, so secret scanners and humans can recognise one
API_KEY_PREFIX = "gk_"
#: characters of the public key id (9 random bytes in url-safe base64)
KEY_ID_LENGTH = 12
_ID_ALPHABET = string.ascii_letters + string.digits
#: random bytes of the secret part: 256 bits, twice ASVS 5.0 7.2.3's 128
SECRET_BYTES = 32
# token_urlsafe drops the base64 padding: 32 bytes make 43 characters
_SECRET_LENGTH = -(-SECRET_BYTES * 4 // 3)
# The id has a fixed length, so the "_" after it is found by position even though ids and
# secrets may themselves contain "_". The upper bound on the secret keeps a hostile header
# from making us hash megabytes.
_API_KEY = re.compile(
    rf"{API_KEY_PREFIX}([A-Za-z0-9_-]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{{_SECRET_LENGTH},128}})",
    re.ASCII,
)
#: compared against when a key id is unknown, so that case costs a hash and a compare too
DUMMY_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A stored user, without the password hash."""

    #: the login, also the Casbin subject
    login: str
    #: ``False`` for a disabled account: no password, token or API key of it is accepted
    active: bool
    #: when the user was created, timezone-aware UTC
    created_at: dt.datetime
    #: epoch seconds; credentials issued before it are invalid
    tokens_valid_after: float
    #: whether a password hash is stored (users without one log in by other means only)
    has_password: bool


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key's public facts: never its secret nor its hash."""

    #: the public part of the key (``gk_<key_id>_…``), safe to show and log
    key_id: str
    #: the user the key authenticates as
    login: str
    #: a label chosen at creation (``"ci deploy"``), or ``None``
    name: str | None
    #: when the key was created, timezone-aware UTC
    created_at: dt.datetime
    #: whether :meth:`~flask_casbin_guard.store.users.UserStore.revoke_api_key` was called
    revoked: bool


def user_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """The users, API keys and revoked-token tables, with the indexes their lookups use."""
    users = Table(
        USERS_TABLE,
        metadata,
        Column("login", String(MAX_TEXT), primary_key=True),
        Column("password_hash", String(MAX_TEXT), nullable=True),
        Column("active", Boolean, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("tokens_valid_after", Float, nullable=False, default=0.0, server_default="0"),
    )
    keys = Table(
        API_KEYS_TABLE,
        metadata,
        Column("key_id", String(32), primary_key=True),
        Column("login", String(MAX_TEXT), nullable=False),
        Column("key_hash", String(64), nullable=False),
        Column("name", String(MAX_TEXT), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("revoked", Boolean, nullable=False),
    )
    # Listing and deleting a user's keys look them up by login.
    Index(f"ix_{API_KEYS_TABLE}_login", keys.c.login)
    revoked = Table(
        REVOKED_TABLE,
        metadata,
        Column("jti", String(MAX_JTI), primary_key=True),
        Column("expires_at", Float, nullable=False),
    )
    # purge_expired deletes by expiry: without the index it would scan every revoked token.
    Index(f"ix_{REVOKED_TABLE}_expires_at", revoked.c.expires_at)
    return users, keys, revoked


def create_user_schema(engine: Engine, tables: tuple[Table, ...]) -> None:
    """Create the missing tables and indexes; refuse existing tables of another shape."""
    # Two processes starting together may both see a table missing; the loser's CREATE fails
    # (on PostgreSQL even with IF NOT EXISTS), and a second pass then finds everything there.
    for attempt in (1, 2):
        try:
            with engine.begin() as connection:
                for table in tables:
                    connection.execute(CreateTable(table, if_not_exists=True))
                    _check_columns(connection, table)
                    for index in table.indexes:
                        connection.execute(CreateIndex(index, if_not_exists=True))
            return
        except (IntegrityError, ProgrammingError):
            if attempt == 2:
                raise


def _check_columns(connection: Any, table: Table) -> None:
    # A table of the same name made by something else would fail on the first query with a
    # confusing SQL error; saying so at startup is clearer.
    found = {column["name"] for column in inspect(connection).get_columns(table.name)}
    missing = [column.name for column in table.columns if column.name not in found]
    if missing:
        raise ConfigurationError(
            f"table {table.name!r} exists without column(s) {', '.join(missing)}: "
            "it was not made by flask_casbin_guard's user store"
        )


def new_api_key() -> tuple[str, str, str]:
    """``(full key, key id, hash of the secret)`` for a new random key."""
    # Letters and digits only: an id starting with "-" would read as a command-line option,
    # and "_" would blur where the id ends in the key. 62**12 ids: collisions are not a concern.
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{API_KEY_PREFIX}{key_id}_{secret}", key_id, hash_secret(secret)


def parse_api_key(key: object) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else ``None``."""
    if not isinstance(key, str):
        return None
    match = _API_KEY.fullmatch(key)
    return (match[1], match[2]) if match else None


def hash_secret(secret: str) -> str:
    """What is stored of a key's secret: its SHA-256 in hex.

    A plain hash is enough (no KDF): the secret has 256 random bits, nothing to guess.
    """
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def jti_key(jti: str) -> str:
    """The stored form of a token id: as given when it fits, else its SHA-256."""
    if len(jti) <= MAX_JTI:
        return jti
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` as aware UTC; SQLite returns the stored UTC time without its zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def api_key_insert(
    users: Table, keys: Table, login: str, key_id: str, key_hash: str, name: str | None
) -> Insert:
    """``INSERT INTO guard_api_keys ... SELECT ... FROM guard_users WHERE login = :login``.

    One write statement that also checks the user exists (no row inserted: no such user).
    FOR KEY SHARE (PostgreSQL; SQLite serialises writers anyway) makes a concurrent delete of
    the user wait for it, so no key outlives its user.
    """
    source = (
        select(
            literal(key_id, String),
            users.c.login,
            literal(key_hash, String),
            literal(name, String),
            literal(dt.datetime.now(dt.UTC), DateTime(timezone=True)),
            literal(False, Boolean),
        )
        .where(users.c.login == login)
        .with_for_update(read=True, key_share=True)
    )
    columns = ["key_id", "login", "key_hash", "name", "created_at", "revoked"]
    return insert(keys).from_select(columns, source)


def select_users(users: Table) -> Select[Any]:
    """The columns :func:`user_record` reads: never the password hash itself."""
    columns = users.c
    return select(
        columns.login,
        columns.active,
        columns.created_at,
        columns.tokens_valid_after,
        columns.password_hash.is_not(None).label("has_password"),
    )


def user_record(row: Any) -> UserRecord:
    """A selected ``guard_users`` row (password hash column excluded) as a record."""
    return UserRecord(
        login=row.login,
        active=bool(row.active),
        created_at=as_utc(row.created_at),
        tokens_valid_after=float(row.tokens_valid_after),
        has_password=bool(row.has_password),
    )


def api_key_record(row: Any) -> ApiKeyRecord:
    """A selected ``guard_api_keys`` row (hash column excluded) as a record."""
    return ApiKeyRecord(
        key_id=row.key_id,
        login=row.login,
        name=row.name,
        created_at=as_utc(row.created_at),
        revoked=bool(row.revoked),
    )


class Transactions:
    """Runs the user store's work: one transaction each, database errors as PolicyError."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: the database URL with its password masked, safe for logs and messages
        self.url = mask_url(engine.url)
        # In-memory SQLite is one connection shared by all threads: two transactions on it
        # would interleave, so operations take turns (as DatabaseStore's do).
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if is_memory_sqlite(engine.url) else contextlib.nullcontext()
        )

    def create(self, tables: tuple[Table, ...]) -> None:
        """Create the missing tables and indexes."""
        try:
            with self._lock:
                create_user_schema(self.engine, tables)
        except SQLAlchemyError as error:
            raise self._wrapped("create the user tables", error) from None

    @contextlib.contextmanager
    def reading(self, action: str) -> Iterator[Connection]:
        """A connection for reads; ``action`` names them in error messages."""
        try:
            with self._lock, self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as error:
            raise self._wrapped(action, error) from None

    def write(
        self,
        action: str,
        work: Callable[[Connection], T],
        *,
        conflict: Callable[[], Exception | None] | None = None,
    ) -> T:
        """Run ``work`` in one transaction, committed when it returns.

        :param conflict: on a duplicate key, the error to raise instead, or ``None`` to run
            ``work`` once more in a new transaction (which then sees the winner's row).
        """
        for attempt in (1, 2):
            try:
                with self._lock, self.engine.begin() as connection:
                    return work(connection)
            except IntegrityError as error:
                if conflict is not None:
                    replacement = conflict()
                    if replacement is not None:
                        raise replacement from None
                    if attempt == 1:
                        continue
                raise self._wrapped(action, error) from None
            except SQLAlchemyError as error:
                raise self._wrapped(action, error) from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _wrapped(self, action: str, error: SQLAlchemyError) -> PolicyError:
        # describe_error keeps the driver's first line only: no SQL, no bound values (password
        # hashes), and the URL's password masked.
        message = f"cannot {action} in {self.url}: {describe_error(error, self.engine.url)}"
        return PolicyError(message, original_error=error)


# -- input checks ---------------------------------------------------------------------------


def is_text(value: str) -> bool:
    """Printable and fits a ``VARCHAR(255)`` column."""
    return 0 < len(value) <= MAX_TEXT and value.isprintable()


def is_login(login: object) -> bool:
    """A login :func:`check_login` accepts (so one that can be stored)."""
    return isinstance(login, str) and is_safe_login(login, MAX_TEXT)


def check_login(login: object) -> None:
    """:raises ValueError: ``login`` could not be a stored user's login."""
    if not is_login(login):
        # Truncated and repr'd: the login may hold control characters meant for a log line.
        raise ValueError(f"unsafe login {str(login)[:40]!r}: printable, no commas, 1-255 chars")


def check_hash(password_hash: object) -> None:
    """:raises ValueError: ``password_hash`` is neither ``None`` nor a modular-crypt hash."""
    # Everything PasswordHasher makes or verifies starts with "$": refusing anything else
    # keeps a plain password from being stored by mistake. The value is never echoed.
    if password_hash is None:
        return
    if not (
        isinstance(password_hash, str)
        and password_hash.startswith("$")
        and is_text(password_hash)
        and " " not in password_hash
    ):
        raise ValueError(
            "password_hash must be a modular-crypt hash ('$argon2id$...') of at most "
            f"{MAX_TEXT} characters, not a password"
        )


def check_bool(value: object, name: str) -> None:
    """:raises ValueError: ``value`` is not a bool (``0``/``"no"`` would be truthy or silent)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {type(value).__name__}")
