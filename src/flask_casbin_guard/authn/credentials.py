"""Checking a login and password: the one path every password-accepting scheme takes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ..errors import AuthenticationFailed
from ..identity import Identity, is_safe_login
from .passwords import DEFAULT_MAX_PASSWORD_LENGTH, PasswordHasher
from .ratelimit import FailureLimiter
from .verified import VerifiedPasswords

#: ``(login, new hash)``: stores a password hash upgraded after a successful login
Rehasher = Callable[[str, str], None]


class PasswordChecker:
    """Rate limit, look up, verify (a dummy hash for unknown logins), rehash on success.

    :param max_length: longer passwords are wrong, refused before their hash is checked
        (``GUARD_PASSWORD_MAX_LENGTH``): sha-crypt costs grow with the password's length.
    :param verified: recent successes, used instead of a new verification (Basic sends the
        password with every request); ``stamp`` is then ``login -> revocation stamp``.
    """

    def __init__(
        self,
        get_user_pass: Callable[[str], str | None],
        hasher: PasswordHasher,
        limiter: FailureLimiter | None = None,
        rehash: Rehasher | None = None,
        max_length: int = DEFAULT_MAX_PASSWORD_LENGTH,
        verified: VerifiedPasswords | None = None,
        stamp: Callable[[str], float | None] | None = None,
    ) -> None:
        self._get_user_pass = get_user_pass
        self._hasher = hasher
        self._limiter = limiter
        self._rehash = rehash
        self._max_length = max_length
        self._verified = verified if stamp is not None else None
        self._stamp = stamp or (lambda login: None)

    def check(self, login: str, password: str, scheme: str, address: str | None) -> Identity:
        """The identity for valid credentials.

        :raises TooManyAttempts: over a failure limit (before any password is checked).
        :raises AuthenticationFailed: the same error for an unknown login and a wrong password.
        """
        # The attempt is reserved before the password is checked and counted when it fails:
        # concurrent guesses cannot all pass the check before the first failure is counted.
        attempt = self._limiter.attempt(login, address) if self._limiter is not None else None
        verified = self._verified
        # Taken before verifying: a success verified across a forget() is not remembered.
        generation = verified.generation if verified is not None else 0
        remembered = False
        with attempt or contextlib.nullcontext():
            stored = self._get_user_pass(login) if is_safe_login(login) else None
            # Unknown and known logins take the same path (a dummy hash is verified for unknown
            # ones) and raise the same error, so neither the body nor the timing tells them apart.
            # An over-long password verifies the dummy hash, as an unknown login does: its
            # refusal costs neither more (4 KB against sha512_crypt: 20x) nor less.
            if len(password) > self._max_length:
                matched = self._hasher.refuse()
            elif verified is not None and verified.known(login, password, stored, self._stamp):
                # Only the right password finds an entry: wrong ones and unknown logins
                # still pay a full verification, alike.
                matched = remembered = True
            else:
                matched = self._hasher.verify(password, stored)
            if not matched:
                if attempt is not None:
                    attempt.failed()
                raise AuthenticationFailed(f"{scheme}: invalid login or password", login=login)
        assert stored is not None  # noqa: S101 - verify() is False for None, for mypy only
        if verified is not None and not remembered:
            verified.remember(login, password, stored, self._stamp(login), generation)
        # A remembered success was checked for rehashing when it was verified (a rehash
        # changes the stored hash, so its entry is not found again).
        if self._rehash is not None and not remembered and self._hasher.needs_rehash(stored):
            self._rehash(login, self._hasher.hash(password))
        return Identity(login=login, scheme=scheme)
