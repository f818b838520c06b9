"""The guard's password and token API, kept apart from its Flask wiring (``extension.py``)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .authn.passwords import PasswordHasher, check_password_policy
from .authn.revocation import check_account, family_key
from .authn.session import Session, end_session, start_session
from .config import GuardSettings
from .errors import AuthenticationFailed, ConfigurationError, GuardError, LoginUnavailable
from .identity import Identity, is_safe_login
from .store.users import UserExists, UserStore

if TYPE_CHECKING:
    from .state import AppState


class AccountsAPI:
    """Passwords, tokens and revocation; mixed into :class:`CasbinGuard`."""

    hasher: PasswordHasher

    def _state(self) -> AppState:
        raise NotImplementedError

    def _declared_roles(self) -> frozenset[str]:
        """Role names the app's route declarations require (the extension knows the app)."""
        return frozenset()

    def hash_password(self, password: str) -> str:
        """An argon2id hash (OWASP parameters) for storing ``password``.

        :raises PasswordPolicyError: for a password the policy refuses (too short, too long,
            or refused by ``GUARD_PASSWORD_CHECK``).
        """
        try:
            settings: GuardSettings | None = self._state().settings
        except GuardError:  # no single app to read a policy from: the defaults apply
            settings = None
        policy = settings or GuardSettings()
        check_password_policy(
            password, policy.password_min_length, policy.password_check, policy.password_max_length
        )
        return self.hasher.hash(password)

    def verify_password(self, password: str, stored: str | None) -> bool:
        return self.hasher.verify(password, stored)

    def check_password(self, login: str, password: str, address: str | None = None) -> Identity:
        """Check a login and password as every password scheme does (rate limit, dummy hash
        for unknown logins, rehash of legacy hashes).

        :raises AuthenticationFailed: for an unknown login or a wrong password, alike.
        :raises TooManyAttempts: over the failed-login limits.
        """
        checker = self._state().password_checker
        if checker is None:
            raise GuardError("no password getter: set GUARD_GET_USER_PASS")
        return checker.check(login, password, "password", address)

    def create_token(self, user: str, expires: dt.timedelta | None = None, **claims: Any) -> str:
        """A signed JWT access token for ``user``."""
        return self._state().bearer.create_token(user, expires, claims)

    def create_refresh_token(self, user: str, expires: dt.timedelta | None = None) -> str:
        """A signed refresh token: only :meth:`refresh` accepts it, never a normal route."""
        return self._state().bearer.create_token(user, expires, None, kind="refresh")

    def create_token_pair(self, user: str) -> tuple[str, str]:
        """An ``(access token, refresh token)`` pair of one new family (claim ``fam``).

        The access token is in its refresh token's family so that revoking the family (a
        rotated refresh token used again: a thief has a copy) refuses it too.
        """
        family, bearer = uuid.uuid4().hex, self._state().bearer
        return (
            bearer.create_token(user, None, None, family=family),
            bearer.create_token(user, None, None, kind="refresh", family=family),
        )

    def refresh(self, refresh_token: str) -> tuple[str, str]:
        """A new ``(access token, refresh token)`` pair; the refresh token used is revoked.

        Rotation makes a stolen refresh token good for one use at most: the token's id is
        claimed atomically in the revocation store, so of two requests sending it at once,
        one wins. Any later use of it (reuse of a rotated token, a race lost) revokes its whole
        family: every token issued from it, both holders' (RFC 9700 §4.14.2).

        :raises AuthenticationFailed: for an invalid, expired, revoked or non-refresh token.
        """
        state = self._state()
        claims = state.bearer.decode(refresh_token, kind="refresh")
        jti = claims.get("jti")
        if not isinstance(jti, str):
            # Rotation revokes the used token by its id: one without an id could be replayed.
            raise AuthenticationFailed("bearer: refresh token without jti")
        # Refresh tokens issued before families existed start their own family at first use.
        family = claims["fam"] if isinstance(claims.get("fam"), str) else jti
        identity = Identity(login=claims["sub"], scheme="bearer", claims=claims)
        revocations = state.revocations
        if revocations.is_revoked_now(family_key(family)):
            raise AuthenticationFailed("bearer: refresh token family revoked", login=identity.login)
        if not revocations.claim(jti, float(claims["exp"])):
            settings = state.settings
            lifetime = max(settings.jwt_refresh_expires, settings.jwt_expires)
            # Any token of the family lives at most a lifetime from now: none is issued later.
            until = time.time() + (lifetime + settings.jwt_leeway).total_seconds()
            revocations.revoke(family_key(family), until)
            raise AuthenticationFailed(
                "bearer: refresh token reused, its family is revoked", login=identity.login
            )
        check_account(identity, revocations)
        login = identity.login
        bearer = state.bearer
        return (
            bearer.create_token(login, None, None, family=family),
            bearer.create_token(login, None, None, kind="refresh", family=family),
        )

    def revoke_token(self, token: str) -> None:
        """Revoke one access or refresh token (a logout for token clients)."""
        state = self._state()
        for kind in ("access", "refresh"):
            try:
                claims = state.bearer.decode(token, kind=kind)
            except AuthenticationFailed:
                continue
            if not isinstance(claims.get("jti"), str):
                raise AuthenticationFailed("bearer: a token without jti cannot be revoked alone")
            state.revocations.revoke(claims["jti"], float(claims["exp"]))
            return
        raise AuthenticationFailed("bearer: cannot revoke an invalid token")

    def start_session(self, session: Session, login: str) -> str:
        """Log ``login`` in on this browser session; returns its CSRF token."""
        return start_session(session, login)

    def end_session(self, session: Session) -> bool:
        """Log out: the session's id is revoked server-side, so a copied cookie stops working."""
        ended = end_session(session)
        if ended is None:
            return False
        sid, issued = ended
        state = self._state()
        state.revocations.revoke(sid, issued + state.settings.session_lifetime)
        return True

    @property
    def users(self) -> UserStore:
        """The built-in user store (needs a database ``GUARD_POLICY``)."""
        state = self._state()
        state.prepare()  # subclass mode reads the configuration at first need
        users = state.users
        if users is None:
            raise ConfigurationError("the built-in user store needs a database GUARD_POLICY")
        return users

    def create_user(
        self, login: str, password: str, *, roles: Iterable[str] = (), active: bool = True
    ) -> None:
        """Create a user with a hashed password and ``GUARD_DEFAULT_ROLES`` plus ``roles``.

        :raises PasswordPolicyError: for a password the policy refuses.
        :raises UserExists: when the login is taken.
        :raises LoginUnavailable: (a ``ValueError``) for a login a rule or route already names
            (see :meth:`check_new_login`).
        :raises ValueError: for an unusable login.
        """
        if not is_safe_login(login):
            raise ValueError(f"unusable login {login!r}")
        # Hashed first: a taken login must cost the same time as a free one, or registration
        # would tell who exists.
        self._create_account(login, self.hash_password(password), roles, active)

    def _create_account(
        self, login: str, password_hash: str, roles: Iterable[str], active: bool
    ) -> None:
        """:meth:`create_user` once the password is hashed: registration hashes it exactly
        once, before it knows whether the login is free, so every outcome costs one hash."""
        state = self._state()
        users = self.users
        if users.get(login) is not None:
            # Before the name check: an existing user's own rules name it, and registration
            # must answer a taken login as it always did.
            raise UserExists(login)
        self.check_new_login(login)
        users.create(login, password_hash, active=active)
        for role in dict.fromkeys((*state.settings.default_roles, *roles)):
            state.policies.add_role(state.settings.user_prefix + login, role)

    def check_new_login(self, login: str) -> None:
        """Refuse a login that Casbin would not see as a new, empty subject.

        Casbin has no separate namespaces for users and roles: a user named like a role gets
        that role's rights, and one named in rules written before the account (``flask guard
        role add newhire admin``, rules a deleted namesake left) inherits them. Refused: any
        value of a role row (``g``, ``g2``…), the subject of a permission row, and role names
        that route declarations require. The account is refused rather than the rules removed:
        they were written on purpose by someone, and the error names the rule to review.

        :raises LoginUnavailable: with the rule that names the login, if one does.
        """
        state = self._state()
        # The policy sees the subject: with GUARD_USER_PREFIX the bare login may be a role.
        subject = state.settings.user_prefix + login
        policies = state.policies
        policies.reload()  # the store's latest rules, not this process's last copy
        row = policies.naming(subject)
        if row is not None:
            rule = ", ".join((row.ptype, *row.values))
            if row.values[0] != subject:
                reason = "it is a role name: the user would get the role's rights"
            else:
                reason = (
                    "policy rules already name it: the new user would get grants made before "
                    "the account existed, or a role's rights; remove them first, or choose "
                    "another login"
                )
            raise LoginUnavailable(login, reason, rule)
        if subject in self._declared_roles():
            raise LoginUnavailable(login, "routes declare it as a role name")

    def set_password(self, login: str, password: str) -> None:
        """Change a password: sessions and tokens issued before stop working."""
        self.users.set_password(login, self.hash_password(password))
        self._forget(login)

    def set_active(self, login: str, active: bool) -> None:
        """Enable or disable a user; disabling rejects their sessions, tokens and keys."""
        self.users.set_active(login, active)
        self._forget(login)

    def create_api_key(self, login: str, name: str | None = None) -> str:
        """A new API key for ``login``: shown this once, stored only as a hash."""
        return self.users.create_api_key(login, name)

    @property
    def registration_open(self) -> bool:
        return self._state().settings.registration

    def _forget(self, login: str) -> None:
        state = self._state()
        state.revocations.forget(login)
        state.verified.forget(login)

    def revoke_user(self, login: str) -> None:
        """Invalidate every session and token ``login`` holds now (not later ones).

        Works for any login: users of the built-in store, of ``GUARD_GET_USER_PASS`` and of an
        identity provider alike; the stamp is stored where revocations are (persistent).
        """
        state = self._state()
        # Before the first request the revocations are still the in-memory placeholder: a stamp
        # written there would never reach the store (a script revoking a user would be lost).
        state.prepare()
        # Remembered Basic successes would otherwise outlive the revocation in this process
        # until their stamp is read again (other processes compare stamps within 1 s).
        state.revocations.revoke_user(login)
        state.verified.forget(login)
