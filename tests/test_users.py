"""UserStore on a real SQLite file and a real PostgreSQL database (one fresh database each),
sharing the engine of a DatabaseStore as the extension does.

The PostgreSQL half skips when the server is absent, unless GUARD_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flask_casbin_guard.errors import ConfigurationError, GuardError, PolicyError
from flask_casbin_guard.store import users as users_module
from flask_casbin_guard.store.csv import PolicyRow
from flask_casbin_guard.store.database import DatabaseStore
from flask_casbin_guard.store.users import (
    ApiKeyRecord,
    UnknownUser,
    UserExists,
    UserRecord,
    UserStore,
)

ARITIES = {"p": 3, "g": 2}
#: shaped like an argon2id hash; the store never verifies it, so no real hashing is needed
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
OTHER_HASH = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNo"
KEY_FORMAT = re.compile(r"gk_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43,})")
USER_TABLES = {"guard_users", "guard_api_keys", "guard_revoked_tokens", "guard_login_stamps"}
UNSAFE_LOGINS = ["", "a,b", " alice", "alice\n", "tab\there", "x" * 256]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A real database: a SQLite file, or a PostgreSQL database created for this test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'guard.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def policy_store(url: str) -> Iterator[DatabaseStore]:
    """The policy store whose engine the user store shares; closed before the drop."""
    store = DatabaseStore(url, ARITIES)
    yield store
    store.close()


@pytest.fixture
def store(policy_store: DatabaseStore) -> UserStore:
    return UserStore(policy_store.engine)


@pytest.fixture
def raw(url: str) -> Iterator[sa.Engine]:
    """A separate engine on the same database, to look at (or break) the tables directly."""
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def rows(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        result = connection.execute(sa.text(f"SELECT * FROM {table}"))  # noqa: S608
        return [dict(row._mapping) for row in result]


@pytest.fixture
def statements(store: UserStore) -> Iterator[list[str]]:
    """The SQL statements the store's engine runs during the test."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(store.engine, "before_cursor_execute", record)


def run_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Run ``target(i)`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target(index)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# -- schema ---------------------------------------------------------------------------------


def test_creates_the_tables_and_indexes(store: UserStore, raw: sa.Engine) -> None:
    inspector = sa.inspect(raw)
    assert set(inspector.get_table_names()) >= USER_TABLES
    users = {c["name"]: c for c in inspector.get_columns("guard_users")}
    assert list(users) == ["login", "password_hash", "active", "created_at", "tokens_valid_after"]
    assert users["login"]["type"].length == 255
    assert users["password_hash"]["nullable"] and users["password_hash"]["type"].length == 255
    assert not users["active"]["nullable"] and not users["tokens_valid_after"]["nullable"]
    assert inspector.get_pk_constraint("guard_users")["constrained_columns"] == ["login"]
    keys = {c["name"]: c for c in inspector.get_columns("guard_api_keys")}
    assert list(keys) == ["key_id", "login", "key_hash", "name", "created_at", "revoked"]
    assert keys["key_id"]["type"].length == 32 and keys["key_hash"]["type"].length == 64
    assert inspector.get_pk_constraint("guard_api_keys")["constrained_columns"] == ["key_id"]
    assert [i["column_names"] for i in inspector.get_indexes("guard_api_keys")] == [["login"]]
    revoked = inspector.get_indexes("guard_revoked_tokens")
    assert [i["column_names"] for i in revoked] == [["expires_at"]]
    assert inspector.get_pk_constraint("guard_revoked_tokens")["constrained_columns"] == ["jti"]
    # A row written by another program without the stamp gets the documented default.
    with raw.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO guard_users (login, active, created_at) VALUES ('legacy', :yes, :now)"
            ),
            {"yes": True, "now": dt.datetime.now(dt.UTC)},
        )
    assert store.tokens_valid_after("legacy") == 0.0


def test_reopening_keeps_the_data(policy_store: DatabaseStore, store: UserStore) -> None:
    store.create("alice", HASH)
    again = UserStore(policy_store.engine)
    assert again.password_hash("alice") == HASH
    assert "***" not in repr(again) and repr(again).startswith("<UserStore ")


def test_without_create_missing_tables_are_a_policy_error(policy_store: DatabaseStore) -> None:
    store = UserStore(policy_store.engine, create=False)
    with pytest.raises(PolicyError, match="cannot read a user in ") as caught:
        store.get("alice")
    assert isinstance(caught.value.original_error, sa.exc.SQLAlchemyError)


def test_a_table_of_another_shape_is_refused(policy_store: DatabaseStore, raw: sa.Engine) -> None:
    with raw.begin() as connection:
        connection.execute(sa.text("CREATE TABLE guard_users (login VARCHAR(255), pw TEXT)"))
    with pytest.raises(ConfigurationError, match="'guard_users' exists without column"):
        UserStore(policy_store.engine)


def test_misuse_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="needs a SQLAlchemy Engine"):
        UserStore("sqlite:///users.db")  # type: ignore[arg-type]
    engine = sa.create_engine("sqlite://")  # a new, empty database per pooled connection
    with pytest.raises(ConfigurationError, match="StaticPool"):
        UserStore(engine)
    engine.dispose()


def test_shares_an_in_memory_database_with_the_policy_store() -> None:
    policy = DatabaseStore("sqlite://", ARITIES)
    store = UserStore(policy.engine)
    results = run_threads(8, lambda i: store.create(f"user{i}", HASH))
    assert results == [None] * 8
    assert [user.login for user in store.list()] == [f"user{i}" for i in range(8)]
    policy.close()


# -- users ----------------------------------------------------------------------------------


def test_create_get_and_list(store: UserStore) -> None:
    before = time.time()
    store.create("bob", HASH)
    store.create("alice", None, active=False)
    bob = store.get("bob")
    assert isinstance(bob, UserRecord)
    assert (bob.login, bob.active, bob.has_password) == ("bob", True, True)
    assert bob.created_at.tzinfo is dt.UTC
    assert before - 1 < bob.created_at.timestamp() <= time.time()
    # Whole seconds: a token issued (with a whole-second iat) in the creation second is valid.
    assert bob.tokens_valid_after == math.floor(bob.created_at.timestamp())
    alice = store.get("alice")
    assert alice is not None and (alice.active, alice.has_password) == (False, False)
    assert [user.login for user in store.list()] == ["alice", "bob"]
    assert store.list()[1] == bob
    assert store.get("carol") is None
    assert {f.name for f in dataclasses.fields(UserRecord)} == {
        "login", "active", "created_at", "tokens_valid_after", "has_password"
    }  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        bob.active = False  # type: ignore[misc]


def test_a_taken_login_raises_user_exists(store: UserStore) -> None:
    store.create("alice", HASH)
    with pytest.raises(UserExists, match="'alice' already exists") as caught:
        store.create("alice", OTHER_HASH)
    assert isinstance(caught.value, GuardError) and isinstance(caught.value, ValueError)
    assert caught.value.login == "alice"
    assert store.password_hash("alice") == HASH


def test_concurrent_creates_of_one_login_let_exactly_one_win(store: UserStore) -> None:
    results = run_threads(8, lambda i: store.create("alice", f"$argon2id$thread{i}"))
    winners = [i for i, result in enumerate(results) if result is None]
    assert len(winners) == 1, results
    assert all(isinstance(r, UserExists) for i, r in enumerate(results) if i not in winners)
    assert store.password_hash("alice") == f"$argon2id$thread{winners[0]}"


def test_unsafe_logins_are_refused_by_writes_and_unknown_to_reads(
    store: UserStore, statements: list[str]
) -> None:
    writes: list[tuple[Callable[..., object], tuple[Any, ...]]] = [
        (store.create, (HASH,)),
        (store.set_password, (HASH,)),
        (store.set_active, (False,)),
        (store.revoke_tokens, ()),
        (store.delete, ()),
        (store.create_api_key, ()),
    ]
    for login in [*UNSAFE_LOGINS, 7]:
        for write, rest in writes:
            with pytest.raises(ValueError, match="unsafe login") as caught:
                write(login, *rest)
            assert "\n" not in str(caught.value)
        assert store.get(login) is None
        assert store.password_hash(login) is None
        assert store.tokens_valid_after(login) is None
        assert store.list_api_keys(login) == []
    assert statements == []  # refused before any SQL


def test_values_that_are_not_hashes_are_refused(store: UserStore) -> None:
    store.create("alice", HASH)
    bad_values: list[Any] = [
        "hunter2-plain-password",
        "",
        "$argon2id$ with space",
        "$" + "a" * 255,
        "$\n",
        12,
    ]
    for bad in bad_values:
        for write, login in [(store.create, "bob"), (store.set_password, "alice")]:
            with pytest.raises(ValueError, match="modular-crypt hash") as caught:
                write(login, bad)
            if bad:
                assert str(bad) not in str(caught.value)
    assert store.password_hash("alice") == HASH and store.get("bob") is None
    with pytest.raises(ValueError, match="active must be True or False"):
        store.create("bob", HASH, active=1)  # type: ignore[arg-type]


def test_password_hash_is_none_for_unknown_disabled_and_passwordless(store: UserStore) -> None:
    store.create("alice", HASH)
    store.create("bob", HASH, active=False)
    store.create("carol", None)
    assert store.password_hash("alice") == HASH
    assert store.password_hash("bob") is None
    assert store.password_hash("carol") is None
    assert store.password_hash("nobody") is None


def test_set_password_moves_the_stamp_unless_told_not_to(store: UserStore) -> None:
    store.create("alice", HASH)
    created = store.tokens_valid_after("alice")
    assert created is not None and created <= time.time()
    store.set_password("alice", OTHER_HASH, revoke_tokens=False)  # a rehash on login
    assert store.password_hash("alice") == OTHER_HASH
    assert store.tokens_valid_after("alice") == created
    before = time.time()
    store.set_password("alice", HASH)
    moved = store.tokens_valid_after("alice")
    assert moved is not None and before <= moved <= time.time()
    store.set_password("alice", None)
    assert store.password_hash("alice") is None
    alice = store.get("alice")
    assert alice is not None and not alice.has_password and alice.active
    with pytest.raises(UnknownUser, match="no user 'bob'") as caught:
        store.set_password("bob", HASH)
    assert isinstance(caught.value, GuardError) and caught.value.login == "bob"
    assert store.get("bob") is None


def test_disabling_moves_the_stamp_and_enabling_does_not(store: UserStore) -> None:
    store.create("alice", HASH)
    before = time.time()
    store.set_active("alice", False)
    disabled = store.get("alice")
    assert disabled is not None and not disabled.active
    assert before <= disabled.tokens_valid_after <= time.time()
    assert store.tokens_valid_after("alice") == disabled.tokens_valid_after
    store.set_active("alice", True)
    enabled = store.get("alice")
    assert enabled is not None and enabled.active
    assert enabled.tokens_valid_after == disabled.tokens_valid_after  # old tokens stay dead
    assert store.password_hash("alice") == HASH
    with pytest.raises(UnknownUser):
        store.set_active("bob", False)
    with pytest.raises(ValueError, match="active must be True or False"):
        store.set_active("alice", "no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="revoke_tokens must be True or False"):
        store.set_password("alice", HASH, revoke_tokens=0)  # type: ignore[arg-type]


def test_revoke_tokens_moves_the_stamp_but_never_backwards(
    store: UserStore, raw: sa.Engine
) -> None:
    store.create("alice", HASH)
    before = time.time()
    store.revoke_tokens("alice")
    stamp = store.tokens_valid_after("alice")
    assert stamp is not None and before <= stamp <= time.time()
    assert store.tokens_valid_after("nobody") is None
    with pytest.raises(UnknownUser):
        store.revoke_tokens("nobody")
    # A stamp from a clock that ran ahead (another server) is kept, not moved back.
    future = time.time() + 3600
    with raw.begin() as connection:
        connection.execute(sa.text("UPDATE guard_users SET tokens_valid_after = :t"), {"t": future})
    store.revoke_tokens("alice")
    store.set_active("alice", False)
    store.set_password("alice", OTHER_HASH)
    assert store.tokens_valid_after("alice") == pytest.approx(future)


def test_delete_removes_the_user_and_its_keys(store: UserStore, raw: sa.Engine) -> None:
    store.create("alice", HASH)
    store.create("bob", HASH)
    alice_key = store.create_api_key("alice")
    bob_key = store.create_api_key("bob")
    assert store.delete("alice") is True
    assert store.delete("alice") is False
    assert store.get("alice") is None and store.password_hash("alice") is None
    assert [row["login"] for row in rows(raw, "guard_api_keys")] == ["bob"]
    assert store.check_api_key(alice_key) is None
    assert store.check_api_key(bob_key) == "bob"
    # A new user of the same login inherits neither the keys nor the old tokens.
    before = time.time()
    store.create("alice", HASH)
    assert store.check_api_key(alice_key) is None
    stamp = store.tokens_valid_after("alice")
    assert stamp is not None and math.floor(before) <= stamp <= time.time()


def test_delete_takes_the_users_rules_and_stamps_its_login(
    policy_store: DatabaseStore, raw: sa.Engine
) -> None:
    store = UserStore(policy_store.engine, policy=policy_store)
    deleted: list[str] = []
    store.on_delete.append(deleted.append)
    policy_store.add(
        [
            PolicyRow("g", ("alice", "admin")),
            PolicyRow("p", ("alice", "data1", "read")),
            PolicyRow("g", ("bob", "alice")),  # alice as a role: not alice's own grant
            PolicyRow("p", ("admin", "data2", "write")),
        ]
    )
    store.create("alice", HASH)
    version, before = policy_store.version(), time.time()
    assert store.delete("alice") is True and deleted == ["alice"]
    assert policy_store.load() == [
        PolicyRow("g", ("bob", "alice")),
        PolicyRow("p", ("admin", "data2", "write")),
    ]
    assert policy_store.version() == version + 1  # other processes reload
    active, stamp = store.account("alice")
    assert active is None and stamp is not None and before <= stamp <= time.time()
    # A login never stored can be stamped too (an external user store, an identity provider).
    store.revoke_login("carol", 123.0)
    store.revoke_login("carol", 100.0)  # never backwards
    assert store.account("carol") == (None, 123.0)
    store.create("dave", HASH)
    store.revoke_login("dave", time.time() + 5)
    record = store.get("dave")
    assert record is not None and store.account("dave") == (True, record.tokens_valid_after)
    assert store.account("a,b") == (None, None)
    with pytest.raises(ConfigurationError, match="share one engine"):
        UserStore(sa.create_engine("sqlite://", poolclass=sa.StaticPool), policy=policy_store)


def test_an_older_database_gets_the_stamps_table(
    policy_store: DatabaseStore, raw: sa.Engine
) -> None:
    UserStore(policy_store.engine).create("alice", HASH)
    with raw.begin() as connection:  # a database made before guard_login_stamps existed
        connection.execute(sa.text("DROP TABLE guard_login_stamps"))
    store = UserStore(policy_store.engine)
    assert "guard_login_stamps" in sa.inspect(raw).get_table_names()
    assert store.get("alice") is not None and store.account("alice")[0] is True


def test_create_clears_keys_a_deleted_namesake_left(store: UserStore, raw: sa.Engine) -> None:
    store.create("alice", HASH)
    key = store.create_api_key("alice")
    with raw.begin() as connection:  # as if written while the user was being deleted
        connection.execute(sa.text("DELETE FROM guard_users"))
    assert store.check_api_key(key) is None
    store.create("alice", HASH)
    assert store.check_api_key(key) is None and store.list_api_keys() == []


def test_a_key_created_while_its_user_is_deleted_does_not_survive(
    store: UserStore, raw: sa.Engine
) -> None:
    store.create("alice", HASH)
    connection = raw.connect()
    transaction = connection.begin()
    connection.execute(sa.text("DELETE FROM guard_users WHERE login = 'alice'"))
    # The delete holds the user row (PostgreSQL) or the write lock (SQLite): the key must wait
    # for it, then find no user, instead of slipping in a key for a user about to vanish.
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.extend(run_threads(1, create_key)))

    def create_key(_: int) -> str:
        return store.create_api_key("alice")

    worker.start()
    time.sleep(0.3)
    assert worker.is_alive()
    transaction.commit()
    connection.close()
    worker.join(timeout=30)
    assert len(results) == 1 and isinstance(results[0], UnknownUser)
    assert rows(raw, "guard_api_keys") == []


# -- API keys -------------------------------------------------------------------------------


def test_api_keys_are_stored_hashed_and_shown_once(store: UserStore, raw: sa.Engine) -> None:
    store.create("alice", HASH)
    key = store.create_api_key("alice", name="ci deploy")
    match = KEY_FORMAT.fullmatch(key)
    assert match is not None
    key_id, secret = match.groups()
    assert len(secret) >= 43  # 32 random bytes in url-safe base64
    assert store.check_api_key(key) == "alice"
    stored = rows(raw, "guard_api_keys")
    assert len(stored) == 1
    assert stored[0]["key_id"] == key_id
    assert stored[0]["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    everything = repr([rows(raw, table) for table in sorted(USER_TABLES)])
    assert secret not in everything and key not in everything
    # No method hands the secret out again.
    answers = [
        store.list_api_keys(),
        store.list_api_keys("alice"),
        store.list(),
        store.get("alice"),
    ]
    assert secret not in repr(answers)
    assert stored[0]["key_hash"] not in repr(answers)
    [record] = store.list_api_keys("alice")
    assert isinstance(record, ApiKeyRecord)
    assert (record.key_id, record.login, record.name, record.revoked) == (
        key_id,
        "alice",
        "ci deploy",
        False,
    )
    assert record.created_at.tzinfo is dt.UTC
    assert {f.name for f in dataclasses.fields(ApiKeyRecord)} == {
        "key_id", "login", "name", "created_at", "revoked"
    }  # fmt: skip
    assert store.create_api_key("alice") != key  # random each time


def test_list_api_keys_per_user_and_all(store: UserStore) -> None:
    store.create("alice", HASH)
    store.create("bob", HASH)
    store.create_api_key("bob", "b1")
    store.create_api_key("alice", "a1")
    store.create_api_key("alice")
    assert [(r.login, r.name) for r in store.list_api_keys()] == [
        ("alice", "a1"),
        ("alice", None),
        ("bob", "b1"),
    ]
    assert [r.name for r in store.list_api_keys("bob")] == ["b1"]
    assert store.list_api_keys("carol") == []
    with pytest.raises(UnknownUser):
        store.create_api_key("carol")
    for name in ["", "line\nbreak", "x" * 256, 5]:
        with pytest.raises(ValueError, match="API key name"):
            store.create_api_key("alice", name)  # type: ignore[arg-type]
    assert len(store.list_api_keys()) == 3


def test_revoked_keys_and_keys_of_disabled_or_deleted_users_fail(store: UserStore) -> None:
    store.create("alice", HASH)
    store.create("bob", HASH)
    first, second = store.create_api_key("alice"), store.create_api_key("alice")
    key_id = first.split("_", 1)[1][:12]
    assert store.revoke_api_key(key_id) is True
    assert store.revoke_api_key(key_id) is True  # still there, still revoked
    assert store.revoke_api_key("nosuchkeyid0") is False
    assert store.check_api_key(first) is None
    assert store.check_api_key(second) == "alice"
    assert [r.revoked for r in store.list_api_keys("alice") if r.key_id == key_id] == [True]
    # Disabled: suspended, not revoked; enabled again, the key works again.
    store.set_active("alice", False)
    assert store.check_api_key(second) is None
    store.set_active("alice", True)
    assert store.check_api_key(second) == "alice"
    store.delete("alice")
    assert store.check_api_key(second) is None
    with pytest.raises(ValueError, match="key id"):
        store.revoke_api_key(None)  # type: ignore[arg-type]


def test_tampered_keys_fail(store: UserStore) -> None:
    store.create("alice", HASH)
    key = store.create_api_key("alice")
    assert store.check_api_key(key) == "alice"
    for position in [3, 10, 14, 16, 30, len(key) - 1]:  # in the id, and in the secret
        changed = "A" if key[position] != "A" else "B"
        tampered = key[:position] + changed + key[position + 1 :]
        assert store.check_api_key(tampered) is None, position
    other = store.create_api_key("alice")
    # The id of one key with the secret of another.
    assert store.check_api_key(key[:16] + other[16:]) is None


def test_malformed_keys_fail_without_a_query(
    store: UserStore, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("alice", HASH)
    key = store.create_api_key("alice")
    hashed: list[str] = []
    real_hash = users_module.hash_secret

    def counting_hash(secret: str) -> str:
        hashed.append(secret)
        return real_hash(secret)

    monkeypatch.setattr(users_module, "hash_secret", counting_hash)
    statements.clear()
    malformed: list[Any] = [
        "",
        "gk_",
        key[3:],  # no prefix
        "xx" + key[2:],  # another prefix
        "gk_" + "A" * 11 + "_" + "B" * 43,  # an 11-character id
        "gk_" + "A" * 13 + "_" + "B" * 43,  # a 13-character id
        key[:16],  # no secret
        key[:-10],  # a secret too short
        key + "\n",
        f"Bearer {key}",
        key.replace("_", ".", 1),
        key + "A" * 200,  # longer than any secret
        None,
        key.encode(),
    ]
    for value in malformed:
        assert store.check_api_key(value) is None, value
    assert statements == [] and hashed == []
    # A well-formed key with an unknown id costs a query and a hash, like a known one.
    unknown = "gk_" + "Z" * 12 + key[15:]
    assert store.check_api_key(unknown) is None
    assert len(statements) == 1 and len(hashed) == 1


# -- revoked tokens -------------------------------------------------------------------------


def test_revoke_jti_is_idempotent_and_keeps_the_later_expiry(
    store: UserStore, raw: sa.Engine
) -> None:
    assert store.is_revoked("jti-1") is False
    store.revoke_jti("jti-1", 2000.0)
    store.revoke_jti("jti-1", 3000.0)
    store.revoke_jti("jti-1", 1000.0)  # never shortened
    assert store.is_revoked("jti-1") is True
    assert rows(raw, "guard_revoked_tokens") == [{"jti": "jti-1", "expires_at": 3000.0}]
    long_jti = "j" * 200  # longer than the column: stored as its SHA-256
    store.revoke_jti(long_jti, 2000)
    assert store.is_revoked(long_jti) and not store.is_revoked("j" * 199)
    assert max(len(row["jti"]) for row in rows(raw, "guard_revoked_tokens")) == 64
    assert store.is_revoked("") is False and store.is_revoked(None) is False  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        store.revoke_jti("", 2000)
    with pytest.raises(ValueError, match="finite"):
        store.revoke_jti("jti-2", math.nan)


def test_concurrent_revocations_of_one_jti_all_succeed(store: UserStore, raw: sa.Engine) -> None:
    results = run_threads(8, lambda i: store.revoke_jti("shared", 1000.0 + i))
    assert results == [None] * 8
    assert rows(raw, "guard_revoked_tokens") == [{"jti": "shared", "expires_at": 1007.0}]


def test_claim_lets_exactly_one_racing_thread_win(store: UserStore, raw: sa.Engine) -> None:
    results = run_threads(8, lambda i: store.claim("refresh-jti", 1000.0 + i))
    assert sorted(map(repr, results)) == ["False"] * 7 + ["True"]
    assert [row["jti"] for row in rows(raw, "guard_revoked_tokens")] == ["refresh-jti"]
    assert store.claim("refresh-jti", 2000.0) is False and store.is_revoked("x", "refresh-jti")
    store.revoke_jti("revoked", 2000.0)
    assert store.claim("revoked", 2000.0) is False  # a revoked token cannot be used either


def test_purge_expired(store: UserStore) -> None:
    now = time.time()
    store.revoke_jti("old", now - 10)
    store.revoke_jti("older", now - 100)
    store.revoke_jti("live", now + 3600)
    assert store.purge_expired(now - 50) == 1
    assert not store.is_revoked("older") and store.is_revoked("old")
    assert store.purge_expired() == 1
    assert not store.is_revoked("old") and store.is_revoked("live")
    assert store.purge_expired() == 0


# -- errors and coexistence -----------------------------------------------------------------


def test_database_errors_are_wrapped_without_secrets(
    url: str, raw: sa.Engine, request: pytest.FixtureRequest
) -> None:
    # PostgreSQL's trust authentication ignores the password, so the URL can carry one.
    db_password = "db-pass-s3cret"
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        url = parsed.set(password=db_password).render_as_string(hide_password=False)
    policy = DatabaseStore(url, ARITIES)
    request.addfinalizer(policy.close)
    store = UserStore(policy.engine)
    store.create("alice", HASH)
    key = store.create_api_key("alice")
    with raw.begin() as connection:
        for table in sorted(USER_TABLES):
            connection.execute(sa.text(f"DROP TABLE {table}"))
    calls: list[Callable[[], object]] = [
        lambda: store.create("bob", HASH),
        lambda: store.get("alice"),
        lambda: store.list(),
        lambda: store.password_hash("alice"),
        lambda: store.set_password("alice", OTHER_HASH),
        lambda: store.set_active("alice", False),
        lambda: store.revoke_tokens("alice"),
        lambda: store.tokens_valid_after("alice"),
        lambda: store.delete("alice"),
        lambda: store.create_api_key("alice"),
        lambda: store.check_api_key(key),
        lambda: store.list_api_keys(),
        lambda: store.revoke_api_key("x"),
        lambda: store.revoke_jti("jti", 1.0),
        lambda: store.is_revoked("jti"),
        lambda: store.purge_expired(),
    ]
    for call in calls:
        with pytest.raises(PolicyError, match=r"^cannot [A-Za-z' ]+ in ") as caught:
            call()
        message = str(caught.value)
        assert isinstance(caught.value.original_error, sa.exc.SQLAlchemyError)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        for secret in (db_password, HASH, OTHER_HASH, key, "SELECT", "INSERT"):
            assert secret not in message, (secret, message)
    assert store.url in message and "\n" not in message


def test_coexists_with_the_policy_store(policy_store: DatabaseStore, raw: sa.Engine) -> None:
    policy_store.add([PolicyRow("p", ("alice", "data1", "read"))])
    store = UserStore(policy_store.engine)
    store.create("alice", HASH)
    key = store.create_api_key("alice")
    store.revoke_jti("jti", time.time() + 60)
    policy_store.add([PolicyRow("g", ("alice", "admin"))])
    assert USER_TABLES | {"casbin_rule", "casbin_guard_version"} == set(
        sa.inspect(raw).get_table_names()
    )
    assert policy_store.load() == [
        PolicyRow("p", ("alice", "data1", "read")),
        PolicyRow("g", ("alice", "admin")),
    ]
    assert policy_store.version() == 2  # user writes do not bump the policy version
    assert store.check_api_key(key) == "alice" and store.is_revoked("jti")
    # A second policy store opened on the same database leaves the user tables alone.
    DatabaseStore(policy_store.engine, ARITIES)
    assert store.password_hash("alice") == HASH


def test_threads_share_one_store(store: UserStore) -> None:
    def work(i: int) -> tuple[str | None, bool]:
        login = f"user{i}"
        store.create(login, HASH)
        key = store.create_api_key(login)
        store.set_password(login, OTHER_HASH)
        store.revoke_jti(f"jti{i}", time.time() + 60)
        return store.check_api_key(key), store.is_revoked(f"jti{i}")

    results = run_threads(6, work)
    assert results == [(f"user{i}", True) for i in range(6)]
    assert len(store.list()) == 6 and len(store.list_api_keys()) == 6
