"""Users, API keys and revoked tokens, in the policy store's database.

Every method is one transaction on its own pooled connection, so a store is shared by threads
as it is. Every write starts with a write statement: SQLite then takes its write lock (waiting
for other writers) before it reads anything, instead of failing with "database is locked"
when it later upgrades a read transaction that another writer overtook.

Credentials issued before a user's ``tokens_valid_after`` are invalid (ASVS 5.0 7.4.1). It is
moved to "now" when the password changes, the account is disabled or all tokens are revoked,
and never moved back, even by a clock that jumps backwards.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hmac
import math
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, case, delete, insert, select, update

from ..errors import ConfigurationError, GuardError
from .database import DatabaseStore
from .revoked import RevocationStore, stamp_login
from .schema import check_engine
from .user_schema import (
    DUMMY_KEY_HASH,
    MAX_TEXT,
    Transactions,
    api_key_insert,
    api_key_record,
    check_bool,
    check_hash,
    check_login,
    hash_secret,
    is_login,
    is_text,
    new_api_key,
    parse_api_key,
    select_users,
    user_record,
    user_tables,
)
from .user_schema import ApiKeyRecord as ApiKeyRecord
from .user_schema import UserRecord as UserRecord


class UserExists(GuardError, ValueError):
    """:meth:`UserStore.create` was given a login that is already taken."""

    def __init__(self, login: str) -> None:
        super().__init__(f"user {login!r} already exists")
        #: the login that is taken
        self.login = login


class UnknownUser(GuardError, LookupError):
    """A method that changes a user was given a login that is not stored."""

    def __init__(self, login: str) -> None:
        super().__init__(f"no user {login!r}")
        #: the login that was not found
        self.login = login


class UserStore:
    """Users, their API keys and revoked token ids, in tables beside ``casbin_rule``.

    :param engine: the engine of the policy store (:attr:`DatabaseStore.engine
        <flask_casbin_guard.store.database.DatabaseStore.engine>`); it is not disposed here.
    :param create: create the tables (``guard_users``, ``guard_api_keys``,
        ``guard_revoked_tokens``, ``guard_login_stamps``) and indexes that are missing.
    :param policy: the policy store on the same engine: :meth:`delete` then removes the
        user's rules in the same transaction.
    :param subject_prefix: ``GUARD_USER_PREFIX``: rules name a user as ``subject_prefix + login``.
    :raises ConfigurationError: no engine, an unusable in-memory one, or tables of another shape.
    :raises PolicyError: the database cannot be reached or the tables created.

    Password hashes are stored as given: hashing and verifying is the caller's job
    (:class:`~flask_casbin_guard.authn.passwords.PasswordHasher`). On an in-memory SQLite
    engine this store's operations take turns, but not with those of the DatabaseStore sharing
    the engine (each has its own lock): use a SQLite file when threads write both at once.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        create: bool = True,
        policy: DatabaseStore | None = None,
        subject_prefix: str = "",
    ) -> None:
        if not isinstance(engine, Engine):
            raise ConfigurationError(
                f"UserStore needs a SQLAlchemy Engine (DatabaseStore.engine), got {engine!r}"
            )
        check_engine(engine)
        #: the engine given, shared with the policy store
        self.engine = engine
        self._db = Transactions(engine)
        #: the database URL with its password masked, safe for logs and messages
        self.url = self._db.url
        if policy is not None and policy.engine is not engine:
            raise ConfigurationError("UserStore and its policy store must share one engine")
        self._policy, self._prefix = policy, subject_prefix
        self._users, self._keys, _ = user_tables(MetaData())
        #: revoked token ids and per-login stamps, in the same database
        self.revocations = RevocationStore(engine, create=create)
        if create:
            self._db.create((self._users, self._keys))
        #: called with the login after :meth:`delete` committed (the guard reloads its
        #: policy and forgets what it remembered of the account)
        self.on_delete: builtins.list[Callable[[str], object]] = []

    def __repr__(self) -> str:
        return f"<UserStore {self.url}>"

    # -- users --------------------------------------------------------------------------------

    def create(self, login: str, password_hash: str | None, *, active: bool = True) -> None:
        """Store a new user.

        :param password_hash: a modular-crypt hash (``$argon2id$…``), or ``None`` for a user
            who never logs in with a password.
        :raises UserExists: the login is taken (also when another thread took it just now).
        :raises ValueError: an unsafe login, a value that is not a hash, or a non-bool
            ``active``.
        """
        check_login(login)
        check_hash(password_hash)
        check_bool(active, "active")
        now = time.time()
        users, keys = self._users, self._keys
        row = {
            "login": login,
            "password_hash": password_hash,
            "active": active,
            "created_at": dt.datetime.fromtimestamp(now, dt.UTC),
            # Tokens a deleted namesake was issued must not come back to life. Whole seconds,
            # because JWT "iat" is whole seconds: a token issued in the creation second is valid.
            "tokens_valid_after": float(math.floor(now)),
        }

        def work(connection: Connection) -> None:
            connection.execute(insert(users).values(row))
            # Keys left by a deleted namesake (written while it was being deleted) go too.
            connection.execute(delete(keys).where(keys.c.login == login))

        self._db.write("create a user", work, conflict=lambda: UserExists(login))

    def get(self, login: str) -> UserRecord | None:
        """The user, or ``None`` when no such user is stored."""
        if not is_login(login):
            return None  # create() refuses such logins, so none is stored
        query = select_users(self._users).where(self._users.c.login == login)
        with self._db.reading("read a user") as connection:
            row = connection.execute(query).first()
        return None if row is None else user_record(row)

    def list(self) -> builtins.list[UserRecord]:
        """Every user, by login."""
        query = select_users(self._users).order_by(self._users.c.login)
        with self._db.reading("list users") as connection:
            return [user_record(row) for row in connection.execute(query)]

    def password_hash(self, login: str) -> str | None:
        """The hash to verify a password against; ``None`` for unknown, disabled or
        password-less users (verify a dummy hash then, so the three take equally long)."""
        if not is_login(login):
            return None
        users = self._users
        query = select(users.c.password_hash).where(users.c.login == login, users.c.active)
        with self._db.reading("read a password hash") as connection:
            value = connection.execute(query).scalar()
        return None if value is None else str(value)

    def set_password(
        self, login: str, password_hash: str | None, *, revoke_tokens: bool = True
    ) -> None:
        """Replace the user's password hash (``None``: no password login any more).

        :param revoke_tokens: also invalidate every token and session issued so far (ASVS 5.0
            7.4.3). Pass ``False`` only when rehashing the same password on login.
        :raises UnknownUser: no such user.
        """
        check_login(login)
        check_hash(password_hash)
        check_bool(revoke_tokens, "revoke_tokens")
        values: dict[str, Any] = {"password_hash": password_hash}
        if revoke_tokens:
            values["tokens_valid_after"] = self._stamp_now()
        self._update_user(login, "change a password", values)

    def set_active(self, login: str, active: bool) -> None:
        """Enable or disable the user. Disabling also invalidates every token and session
        issued so far (ASVS 5.0 7.4.2); enabling again does not revive them.

        API keys of a disabled user are refused while it is disabled, and accepted again once
        it is enabled, unless revoked.

        :raises UnknownUser: no such user.
        """
        check_login(login)
        check_bool(active, "active")
        values: dict[str, Any] = {"active": active}
        if not active:
            values["tokens_valid_after"] = self._stamp_now()
        self._update_user(login, "enable or disable a user", values)

    def revoke_tokens(self, login: str) -> None:
        """Invalidate every token and session issued to the user so far ("log out
        everywhere"), not its API keys.

        :raises UnknownUser: no such user.
        """
        check_login(login)
        self._update_user(login, "revoke tokens", {"tokens_valid_after": self._stamp_now()})

    def tokens_valid_after(self, login: str) -> float | None:
        """Epoch seconds before which the user's tokens are invalid; ``None`` for an unknown
        user. Disabled users have a stamp too (set when disabled); check :meth:`get` for it."""
        if not is_login(login):
            return None
        users = self._users
        query = select(users.c.tokens_valid_after).where(users.c.login == login)
        with self._db.reading("read a user's token stamp") as connection:
            value = connection.execute(query).scalar()
        return None if value is None else float(value)

    def delete(self, login: str) -> bool:
        """Delete the user and everything keyed by its login; return whether the user existed.

        In one transaction: the user, its API keys, a stamp voiding every token and session
        issued so far (kept after the user is gone, so they stay refused), and, with a policy
        store on this engine, every rule whose first value is its subject (its ``g`` roles and
        ``p`` rules). A later account of the same login starts with nothing of it.
        """
        check_login(login)
        users, keys, stamps = self._users, self._keys, self.revocations.stamps
        now = time.time()

        def work(connection: Connection) -> bool:
            # The user row first: on PostgreSQL this waits for a create_api_key holding it, so
            # the key delete below then sees that new key (READ COMMITTED reads anew).
            found = connection.execute(delete(users).where(users.c.login == login)).rowcount
            connection.execute(delete(keys).where(keys.c.login == login))
            stamp_login(connection, stamps, login, now)
            return bool(found)

        if self._policy is None:
            existed = self._db.write("delete a user", work)
        else:
            # Rules were written for the subject: the bare login may be another account's role.
            existed = self._policy.remove_subject(self._prefix + login, work)
        for listener in list(self.on_delete):
            listener(login)
        return existed

    # -- API keys -----------------------------------------------------------------------------

    def create_api_key(self, login: str, name: str | None = None) -> str:
        """A new key for the user: ``gk_<key_id>_<secret>``.

        This is the only time the key is available: only the SHA-256 of its secret is stored.

        :param name: a label to tell keys apart in :meth:`list_api_keys`.
        :raises UnknownUser: no such user.
        """
        check_login(login)
        if name is not None and not (isinstance(name, str) and is_text(name)):
            raise ValueError(f"an API key name is printable text of at most {MAX_TEXT} characters")
        key, key_id, key_hash = new_api_key()
        insert_key = api_key_insert(self._users, self._keys, login, key_id, key_hash, name)
        stored = select(self._keys.c.key_id).where(self._keys.c.key_id == key_id)

        def work(connection: Connection) -> None:
            connection.execute(insert_key)
            # Not the INSERT's rowcount: SQLAlchemy does not keep it for INSERTs, and psycopg
            # reports -1 once the cursor is closed.
            if connection.execute(stored).first() is None:
                raise UnknownUser(login)

        self._db.write("create an API key", work)
        return key

    def check_api_key(self, key: str) -> str | None:
        """The login a key authenticates, or ``None``: malformed, unknown, revoked, wrong
        secret, or its user disabled or deleted.

        Malformed keys are refused without a query. Any well-formed key costs one indexed
        lookup, one hash and one constant-time compare, known id or not.
        """
        parsed = parse_api_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        keys, users = self._keys, self._users
        query = (
            select(keys.c.key_hash, keys.c.revoked, users.c.login, users.c.active)
            .join(users, users.c.login == keys.c.login)
            .where(keys.c.key_id == key_id)
        )
        with self._db.reading("check an API key") as connection:
            row = connection.execute(query).first()
        stored = DUMMY_KEY_HASH if row is None else str(row.key_hash)
        # Bytes, not str: compare_digest refuses non-ASCII text, and the stored column could
        # hold anything someone wrote to it.
        matches = hmac.compare_digest(hash_secret(secret).encode(), stored.encode())
        if row is None or not matches or row.revoked or not row.active:
            return None
        return str(row.login)

    def list_api_keys(self, login: str | None = None) -> builtins.list[ApiKeyRecord]:
        """The keys of one user, or of all users, revoked ones included; never a secret."""
        keys = self._keys
        query = select(keys.c.key_id, keys.c.login, keys.c.name, keys.c.created_at, keys.c.revoked)
        query = query.order_by(keys.c.login, keys.c.created_at, keys.c.key_id)
        if login is not None:
            if not is_login(login):
                return []
            query = query.where(keys.c.login == login)
        with self._db.reading("list API keys") as connection:
            return [api_key_record(row) for row in connection.execute(query)]

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key for good; return whether a key has this id (revoked before or not)."""
        if not isinstance(key_id, str):
            raise ValueError("a key id is a string")
        keys = self._keys
        query = update(keys).where(keys.c.key_id == key_id).values(revoked=True)
        return self._db.write("revoke an API key", lambda c: bool(c.execute(query).rowcount))

    # -- revoked tokens and stamps (see RevocationStore) -------------------------------------

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        """Revoke a token id until ``expires_at`` (epoch seconds), keeping a later expiry."""
        self.revocations.revoke_jti(jti, expires_at)

    def claim(self, jti: str, expires_at: float) -> bool:
        """Revoke a token id atomically: ``True`` only for the first caller (a refresh)."""
        return self.revocations.claim(jti, expires_at)

    def is_revoked(self, *jtis: str) -> bool:
        return self.revocations.is_revoked(*jtis)

    def purge_expired(self, now: float | None = None) -> int:
        """:meth:`RevocationStore.purge_expired <.revoked.RevocationStore.purge_expired>`."""
        return self.revocations.purge_expired(now)

    def revoke_login(self, login: str, at: float | None = None) -> None:
        """Void the credentials ``login`` was issued before ``at`` (default: now), stored user
        or not; a stored user's ``tokens_valid_after`` moves too, so its record agrees."""
        check_login(login)
        when = time.time() if at is None else float(at)
        users, stamps = self._users, self.revocations.stamps
        moved = update(users).where(users.c.login == login)
        moved = moved.values(tokens_valid_after=self._stamp_now(when))

        def work(connection: Connection) -> None:
            stamp_login(connection, stamps, login, when)
            connection.execute(moved)

        self._db.write("revoke a login", work)

    def account(self, login: str) -> tuple[bool | None, float | None]:
        """``(active, stamp)`` in one query: ``active`` is ``None`` for a login not stored;
        ``stamp`` the later of the user's ``tokens_valid_after`` and the login's stamp
        (``None`` when neither exists)."""
        if not is_login(login):
            return None, None
        users, stamps = self._users, self.revocations.stamps
        query = select(
            select(users.c.active).where(users.c.login == login).scalar_subquery(),
            select(users.c.tokens_valid_after).where(users.c.login == login).scalar_subquery(),
            select(stamps.c.valid_after).where(stamps.c.login == login).scalar_subquery(),
        )
        with self._db.reading("read an account") as connection:
            active, user_stamp, login_stamp = connection.execute(query).one()
        found = [float(value) for value in (user_stamp, login_stamp) if value is not None]
        return (None if active is None else bool(active)), (max(found) if found else None)

    # -- internals ----------------------------------------------------------------------------

    def _stamp_now(self, now: float | None = None) -> Any:
        """``tokens_valid_after`` moved to ``now`` (default: the time), never backwards."""
        now, stamp = time.time() if now is None else now, self._users.c.tokens_valid_after
        return case((stamp < now, now), else_=stamp)

    def _update_user(self, login: str, action: str, values: dict[str, Any]) -> None:
        query = update(self._users).where(self._users.c.login == login).values(values)

        def work(connection: Connection) -> None:
            if not connection.execute(query).rowcount:
                raise UnknownUser(login)

        self._db.write(action, work)
