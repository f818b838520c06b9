"""Revoked token ids and per-login revocation stamps, in a SQL database.

The user store keeps them beside its users; an app without a policy database keeps them in a
SQLite file of its instance folder (:func:`local_revocations_url`), so that a logout, a used
refresh token or a "log out everywhere" survives a restart in every configuration.

A login's stamp lives in its own table, not in ``guard_users``: it must outlive a deleted
account (its tokens stay refused) and exist for logins the built-in store does not hold
(``GUARD_GET_USER_PASS``, an identity provider's tokens).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    case,
    delete,
    insert,
    select,
    update,
)

from ..errors import ConfigurationError, GuardError
from .schema import check_engine, open_engine
from .user_schema import MAX_TEXT, Transactions, check_login, is_login, jti_key
from .user_schema import user_tables as _user_tables

LOGIN_STAMPS_TABLE = "guard_login_stamps"
#: the file an app without a policy database keeps its revocations in, in its instance folder
LOCAL_FILE = "guard-revocations.db"


class _AlreadyUsed(GuardError):
    """The token id was stored already: internal signal of :meth:`RevocationStore.claim`."""


def login_stamp_table(metadata: MetaData) -> Table:
    """``guard_login_stamps``: credentials of ``login`` issued before ``valid_after`` are void."""
    return Table(
        LOGIN_STAMPS_TABLE,
        metadata,
        Column("login", String(MAX_TEXT), primary_key=True),
        Column("valid_after", Float, nullable=False),
    )


def revocation_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The revoked-token table (shared with the user store's schema) and the stamps table."""
    revoked = _user_tables(metadata)[2]
    return revoked, login_stamp_table(metadata)


def stamp_login(connection: Connection, stamps: Table, login: str, at: float) -> None:
    """Move ``login``'s stamp to ``at`` inside the caller's transaction, never backwards."""
    later = case((stamps.c.valid_after < at, at), else_=stamps.c.valid_after)
    moved = connection.execute(
        update(stamps).where(stamps.c.login == login).values(valid_after=later)
    ).rowcount
    if not moved:
        connection.execute(insert(stamps).values(login=login, valid_after=at))


class RevocationStore:
    """Revoked token ids (until they expire) and per-login stamps.

    :param engine: an engine of the database to use; not disposed here unless ``owned``.
    :param create: create the tables when missing.
    """

    def __init__(self, engine: Engine, *, create: bool = True, owned: bool = False) -> None:
        check_engine(engine)
        self.engine = engine
        self._owned = owned
        self._db = Transactions(engine)
        #: the database URL with its password masked, safe for logs and messages
        self.url = self._db.url
        metadata = MetaData()
        # Only the table objects are wanted here: the user tables are not created.
        self._revoked, self._stamps = revocation_tables(metadata)
        if create:
            self._db.create((self._revoked, self._stamps))

    def __repr__(self) -> str:
        return f"<RevocationStore {self.url}>"

    @property
    def stamps(self) -> Table:
        """The stamps table, for writes inside another store's transaction."""
        return self._stamps

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()

    # -- token ids ------------------------------------------------------------------------

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        """Remember that the token with this id is revoked until ``expires_at`` (epoch
        seconds); revoking it again keeps the later expiry."""
        stored, expiry = _checked(jti, expires_at)
        revoked = self._revoked
        later = case((revoked.c.expires_at < expiry, expiry), else_=revoked.c.expires_at)
        extend = update(revoked).where(revoked.c.jti == stored).values(expires_at=later)

        def work(connection: Connection) -> None:
            # UPDATE first, INSERT when nothing was there: portable, and a write first.
            if not connection.execute(extend).rowcount:
                connection.execute(insert(revoked).values(jti=stored, expires_at=expiry))

        # Two threads revoking the same new jti may both insert; the loser tries again and
        # then finds the row.
        self._db.write("revoke a token", work, conflict=lambda: None)

    def claim(self, jti: str, expires_at: float) -> bool:
        """Revoke the token with this id unless it was already: ``True`` for the one caller
        that revoked it, ``False`` for every other, also for callers racing in other threads
        or processes (the primary key decides, so no check-then-act gap exists)."""
        stored, expiry = _checked(jti, expires_at)
        statement = insert(self._revoked).values(jti=stored, expires_at=expiry)
        try:
            self._db.write(
                "use a token", lambda c: c.execute(statement), conflict=lambda: _AlreadyUsed()
            )
        except _AlreadyUsed:
            return False
        return True

    def is_revoked(self, *jtis: str) -> bool:
        """Whether any of the tokens with these ids was revoked (one query for all)."""
        keys = [jti_key(jti) for jti in jtis if isinstance(jti, str) and jti]
        if not keys:
            return False  # revoke_jti refuses such ids, so none is stored
        revoked = self._revoked
        query = select(revoked.c.jti).where(revoked.c.jti.in_(keys)).limit(1)
        with self._db.reading("check a token id") as connection:
            return connection.execute(query).first() is not None

    def purge_expired(self, now: float | None = None) -> int:
        """Forget revoked tokens that expired before ``now`` (default: the current time);
        they are refused for their age anyway. Return how many were forgotten."""
        cutoff = time.time() if now is None else float(now)
        revoked = self._revoked
        query = delete(revoked).where(revoked.c.expires_at < cutoff)
        return self._db.write("purge revoked tokens", lambda c: int(c.execute(query).rowcount))

    # -- logins ---------------------------------------------------------------------------

    def revoke_login(self, login: str, at: float | None = None) -> None:
        """Void every credential of ``login`` issued before ``at`` (default: now); a stamp
        never moves backwards. Works for any login, stored user or not."""
        check_login(login)
        when = time.time() if at is None else float(at)
        self._db.write("revoke a login", lambda c: stamp_login(c, self._stamps, login, when))

    def login_stamp(self, login: str) -> float | None:
        """The login's stamp, or ``None`` when it was never revoked."""
        if not is_login(login):
            return None
        query = select(self._stamps.c.valid_after).where(self._stamps.c.login == login)
        with self._db.reading("read a login's stamp") as connection:
            value = connection.execute(query).scalar()
        return None if value is None else float(value)

    def account(self, login: str) -> tuple[bool | None, float | None]:
        """``(active, stamp)`` as :class:`~flask_casbin_guard.authn.revocation.StoreRevocations`
        asks: this store knows no accounts, so ``active`` is ``None``."""
        return None, self.login_stamp(login)


def _checked(jti: object, expires_at: float) -> tuple[str, float]:
    if not isinstance(jti, str) or not jti:
        raise ValueError("a token id (jti) is a non-empty string")
    expiry = float(expires_at)
    if not math.isfinite(expiry):
        raise ValueError("expires_at must be a finite number of epoch seconds")
    return jti_key(jti), expiry


def local_revocations_url(location: str | None, instance_path: str) -> str:
    """The database URL of an app's own revocation store: ``location`` (a SQLAlchemy URL, or
    a file path relative to the instance folder), by default a SQLite file there.

    :raises ConfigurationError: the instance folder cannot be created.
    """
    if location is not None and "://" in location:
        return location
    path = Path(instance_path, location or LOCAL_FILE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(
            f"cannot create {str(path.parent)!r} for the revocation store: {error}; sessions "
            "and refresh tokens need a persistent place (set GUARD_REVOCATION_STORE)"
        ) from None
    return f"sqlite:///{path}"


def open_local(location: str | None, instance_path: str) -> RevocationStore:
    """The revocation store of an app without a policy database (its engine owned)."""
    url = local_revocations_url(location, instance_path)
    engine, memory = open_engine(url)
    if memory:
        engine.dispose()
        raise ConfigurationError(
            "GUARD_REVOCATION_STORE must be a file or a server: revocations in memory "
            "would be forgotten at the next restart"
        )
    try:
        return RevocationStore(engine, owned=True)
    except BaseException:
        engine.dispose()
        raise
