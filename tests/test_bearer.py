"""BearerScheme with real PyJWT and real keys: pinned algorithm, required claims, no key hints."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from flask_casbin_guard.authn.base import Scheme
from flask_casbin_guard.authn.bearer import MAX_TOKEN_LENGTH, RESERVED_CLAIMS, BearerScheme
from flask_casbin_guard.config import GuardSettings
from flask_casbin_guard.errors import AuthenticationFailed, ConfigurationError
from flask_casbin_guard.identity import Identity
from helpers import JWT_SECRET, basic, bearer

ISSUER = "https://issuer.example"
OTHER_SECRET = "another-secret-that-is-also-32-bytes-or-more"


# --- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes


def _rsa_pair() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


@pytest.fixture(scope="module")
def rsa_keys() -> KeyPair:
    return _rsa_pair()


@pytest.fixture(scope="module")
def attacker_rsa_keys() -> KeyPair:
    return _rsa_pair()


def request(headers: dict[str, str] | None = None) -> Request:
    return EnvironBuilder(headers=headers or {}).get_request()


def make_scheme(**settings: Any) -> BearerScheme:
    settings.setdefault("jwt_secret", JWT_SECRET)
    return BearerScheme(GuardSettings(**settings), realm="test-app")


@pytest.fixture
def scheme() -> BearerScheme:
    return make_scheme()


def now() -> int:
    return int(time.time())


def payload(**claims: Any) -> dict[str, Any]:
    """Valid access-token claims for ``alice``; ``None`` values remove a claim."""
    base: dict[str, Any] = {"sub": "alice", "iat": now(), "exp": now() + 300, "type": "access"}
    base.update(claims)
    return {k: v for k, v in base.items() if v is not None}


def encode(
    claims: dict[str, Any],
    key: str | bytes = JWT_SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, for what PyJWT refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(signature)}"


def hs256_forge(claims: dict[str, Any], secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def authenticate(scheme: BearerScheme, token: str) -> Identity | None:
    return scheme.authenticate(request(bearer(token)))


def rejected(scheme: BearerScheme, token: str) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        authenticate(scheme, token)
    assert info.value.code == 401
    assert info.value.description == AuthenticationFailed.public_message
    return info.value


# --- scheme basics ----------------------------------------------------------------------------


def test_follows_the_scheme_protocol(scheme: BearerScheme) -> None:
    assert isinstance(scheme, Scheme)
    assert scheme.name == "bearer"


def test_challenge(scheme: BearerScheme) -> None:
    assert scheme.challenge() == 'Bearer realm="test-app"'
    quoted = BearerScheme(GuardSettings(jwt_secret=JWT_SECRET), realm='a "b"\\c')
    assert quoted.challenge() == r'Bearer realm="a \"b\"\\c"'


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("alice", "alice-password"),
        {"Authorization": "Token abc"},
        {"Authorization": "Bearertoken"},
    ],
)
def test_other_schemes_are_not_mine(scheme: BearerScheme, headers: dict[str, str]) -> None:
    assert scheme.authenticate(request(headers)) is None


@pytest.mark.parametrize("kind", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_prefix_is_case_insensitive(scheme: BearerScheme, kind: str) -> None:
    token = scheme.create_token("alice")
    identity = scheme.authenticate(request({"Authorization": f"{kind} {token}"}))
    assert identity is not None
    assert identity.login == "alice"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer    "])
def test_empty_token_fails(scheme: BearerScheme, header: str) -> None:
    with pytest.raises(AuthenticationFailed):
        scheme.authenticate(request({"Authorization": header}))


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "a.b", "....", "eyJ9.eyJ9.x"])
def test_garbage_token_fails(scheme: BearerScheme, token: str) -> None:
    rejected(scheme, token)


# --- round trip -------------------------------------------------------------------------------


def test_create_token_round_trip(scheme: BearerScheme) -> None:
    before = now()
    token = scheme.create_token("alice")
    identity = authenticate(scheme, token)
    assert identity is not None
    assert identity.login == "alice"
    assert identity.scheme == "bearer"
    claims = identity.claims
    assert {"sub", "exp", "iat", "nbf", "jti", "type"} <= set(claims)
    assert claims["sub"] == "alice"
    assert claims["type"] == "access"
    assert before - 1 <= claims["iat"] <= now() + 1
    # iat is a fractional NumericDate (exact revocation comparisons); nbf whole seconds.
    assert claims["nbf"] == int(claims["iat"])
    assert claims["exp"] - claims["iat"] == pytest.approx(3600)
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) == 32
    assert "iss" not in claims
    assert "aud" not in claims
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_each_token_has_a_fresh_jti(scheme: BearerScheme) -> None:
    first = scheme.decode(scheme.create_token("alice"))
    second = scheme.decode(scheme.create_token("alice"))
    assert first["jti"] != second["jti"]


def test_create_token_custom_expiry_and_claims(scheme: BearerScheme) -> None:
    token = scheme.create_token(
        "bob", expires=dt.timedelta(minutes=5), claims={"scope": "read", "n": 1}
    )
    claims = scheme.decode(token)
    assert claims["exp"] - claims["iat"] == pytest.approx(300)
    assert claims["scope"] == "read"
    assert claims["n"] == 1
    assert claims["sub"] == "bob"


def test_configured_expiry_is_used() -> None:
    scheme = make_scheme(jwt_expires=dt.timedelta(minutes=2))
    claims = scheme.decode(scheme.create_token("alice"))
    assert claims["exp"] - claims["iat"] == pytest.approx(120)


def test_tampered_payload_is_rejected(scheme: BearerScheme) -> None:
    header, _, signature = scheme.create_token("alice").split(".")
    forged_claims = b64url(json.dumps(payload(sub="admin")).encode())
    rejected(scheme, f"{header}.{forged_claims}.{signature}")


def test_hand_made_token_without_type_is_an_access_token(scheme: BearerScheme) -> None:
    identity = authenticate(scheme, encode(payload(type=None)))
    assert identity is not None
    assert identity.login == "alice"


# --- required claims and time -----------------------------------------------------------------


def test_exp_is_required(scheme: BearerScheme) -> None:
    assert authenticate(scheme, encode(payload())) is not None  # control
    rejected(scheme, encode(payload(exp=None)))


def test_expired_token_is_rejected(scheme: BearerScheme) -> None:
    rejected(scheme, encode(payload(iat=now() - 600, exp=now() - 60)))


def test_expired_within_leeway_is_accepted(scheme: BearerScheme) -> None:
    # default leeway is 10 s
    assert authenticate(scheme, encode(payload(iat=now() - 600, exp=now() - 5))) is not None


def test_leeway_zero_rejects_just_expired() -> None:
    scheme = make_scheme(jwt_leeway=0)
    rejected(scheme, encode(payload(iat=now() - 600, exp=now() - 5)))


def test_larger_leeway_accepts_older_expiry() -> None:
    scheme = make_scheme(jwt_leeway=120)
    token = encode(payload(iat=now() - 600, exp=now() - 60))
    assert authenticate(scheme, token) is not None


def test_created_token_already_expired_beyond_leeway(scheme: BearerScheme) -> None:
    rejected(scheme, scheme.create_token("alice", expires=dt.timedelta(seconds=-60)))


def test_not_yet_valid_token_is_rejected(scheme: BearerScheme) -> None:
    rejected(scheme, encode(payload(nbf=now() + 120, exp=now() + 600)))


# --- algorithm pinning ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", [b"", b"junk"])
def test_alg_none_is_rejected(scheme: BearerScheme, alg: str, signature: bytes) -> None:
    rejected(scheme, craft({"alg": alg, "typ": "JWT"}, payload(), signature))


def test_alg_none_made_by_pyjwt_is_rejected(scheme: BearerScheme) -> None:
    rejected(scheme, jwt.encode(payload(), None, algorithm="none"))


def test_other_hmac_algorithm_with_same_secret_is_rejected() -> None:
    secret = "k" * 64  # long enough for HS512, so PyJWT signs it without a warning
    scheme = make_scheme(jwt_secret=secret)
    assert authenticate(scheme, encode(payload(), secret, "HS256")) is not None  # control
    rejected(scheme, encode(payload(), secret, "HS512"))
    rejected(scheme, encode(payload(), secret[:48], "HS384"))


def test_wrong_secret_is_rejected(scheme: BearerScheme) -> None:
    rejected(scheme, encode(payload(), OTHER_SECRET))
    other = make_scheme(jwt_secret=OTHER_SECRET)
    rejected(scheme, other.create_token("alice"))


def test_bytes_secret_works() -> None:
    secret = bytes(range(40))
    scheme = make_scheme(jwt_secret=secret)
    assert authenticate(scheme, encode(payload(), secret)) is not None


def test_rs256_token_accepted(rsa_keys: KeyPair) -> None:
    scheme = make_scheme(
        jwt_algorithm="RS256", jwt_secret=rsa_keys.private_pem, jwt_public_key=rsa_keys.public_pem
    )
    created = scheme.create_token("alice")
    assert jwt.get_unverified_header(created)["alg"] == "RS256"
    assert authenticate(scheme, created) == Identity("alice", "bearer", scheme.decode(created))
    hand_made = encode(payload(), rsa_keys.private_pem, "RS256")
    identity = authenticate(scheme, hand_made)
    assert identity is not None
    assert identity.login == "alice"


def test_rs256_public_key_as_hmac_secret_is_rejected(rsa_keys: KeyPair) -> None:
    """The classic key-confusion attack: HS256 signed with the (public) PEM text."""
    scheme = make_scheme(
        jwt_algorithm="RS256", jwt_secret=rsa_keys.private_pem, jwt_public_key=rsa_keys.public_pem
    )
    forged = hs256_forge(payload(sub="admin"), rsa_keys.public_pem)
    # the forgery is a well-formed HS256 token whose HMAC is right for the PEM bytes
    assert jwt.get_unverified_header(forged)["alg"] == "HS256"
    signing_input, _, signature = forged.rpartition(".")
    expected = hmac.new(rsa_keys.public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert signature == b64url(expected)
    rejected(scheme, forged)
    # also with the PEM stripped of its trailing newline, a common variant of the attack
    rejected(scheme, hs256_forge(payload(sub="admin"), rsa_keys.public_pem.strip()))


@pytest.mark.parametrize("algorithm", ["RS512", "PS256"])
def test_rs256_rejects_other_rsa_algorithms(rsa_keys: KeyPair, algorithm: str) -> None:
    scheme = make_scheme(
        jwt_algorithm="RS256", jwt_secret=rsa_keys.private_pem, jwt_public_key=rsa_keys.public_pem
    )
    rejected(scheme, encode(payload(), rsa_keys.private_pem, algorithm))


def test_rs256_token_from_another_key_is_rejected(
    rsa_keys: KeyPair, attacker_rsa_keys: KeyPair
) -> None:
    scheme = make_scheme(jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=rsa_keys.public_pem)
    rejected(scheme, encode(payload(), attacker_rsa_keys.private_pem, "RS256"))


# --- keys named by the token are ignored ------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"kid": "attacker-key"},
        {"jku": "https://attacker.example/jwks.json"},
        {"kid": "../../dev/null", "jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
    ],
)
def test_key_hints_in_header_do_not_change_the_key(
    scheme: BearerScheme, headers: dict[str, Any]
) -> None:
    # signed with the configured key: the hints are ignored and the token verifies
    assert authenticate(scheme, encode(payload(), JWT_SECRET, headers=headers)) is not None
    # signed with the key the hints "point to": still only the configured key is used
    rejected(scheme, encode(payload(), OTHER_SECRET, headers=headers))


def test_embedded_jwk_is_not_trusted(rsa_keys: KeyPair, attacker_rsa_keys: KeyPair) -> None:
    scheme = make_scheme(jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=rsa_keys.public_pem)
    attacker_public = serialization.load_pem_public_key(attacker_rsa_keys.public_pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker_public))
    token = encode(
        payload(sub="admin"),
        attacker_rsa_keys.private_pem,
        "RS256",
        headers={"jwk": jwk, "kid": "attacker", "jku": "https://attacker.example/jwks.json"},
    )
    rejected(scheme, token)


# --- issuer and audience ----------------------------------------------------------------------


@pytest.fixture
def iss_aud_scheme() -> BearerScheme:
    return make_scheme(jwt_issuer=ISSUER, jwt_audience="api")


def test_issuer_and_audience_round_trip(iss_aud_scheme: BearerScheme) -> None:
    token = iss_aud_scheme.create_token("alice")
    identity = authenticate(iss_aud_scheme, token)
    assert identity is not None
    assert identity.claims["iss"] == ISSUER
    assert identity.claims["aud"] == "api"
    assert authenticate(iss_aud_scheme, encode(payload(iss=ISSUER, aud="api"))) is not None
    assert authenticate(iss_aud_scheme, encode(payload(iss=ISSUER, aud=["x", "api"]))) is not None


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example", "aud": "api"},
        {"iss": None, "aud": "api"},
        {"iss": ISSUER, "aud": "web"},
        {"iss": ISSUER, "aud": None},
        {"iss": ISSUER, "aud": ["web", "mobile"]},
        {"iss": ISSUER + "/", "aud": "api"},
    ],
)
def test_wrong_or_missing_issuer_or_audience(
    iss_aud_scheme: BearerScheme, claims: dict[str, Any]
) -> None:
    rejected(iss_aud_scheme, encode(payload(**claims)))


def test_several_accepted_audiences() -> None:
    scheme = make_scheme(jwt_audience=("api", "web"))
    assert authenticate(scheme, encode(payload(aud="web"))) is not None
    assert authenticate(scheme, encode(payload(aud="api"))) is not None
    rejected(scheme, encode(payload(aud="mobile")))
    created = scheme.decode(scheme.create_token("alice"))
    assert created["aud"] == ["api", "web"]


def test_token_for_an_audience_is_refused_when_none_is_configured(scheme: BearerScheme) -> None:
    rejected(scheme, encode(payload(aud="some-other-service")))


# --- token type and subject -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["refresh", "id", "ACCESS", ""])
def test_non_access_token_types_are_rejected(scheme: BearerScheme, kind: str) -> None:
    assert authenticate(scheme, encode(payload(type="access"))) is not None  # control
    rejected(scheme, encode(payload(type=kind)))


@pytest.mark.parametrize(
    "sub",
    [None, 42, ["alice"], {"login": "alice"}, "", "alice,admin", "alice\nadmin", " alice"],
)
def test_bad_subjects_are_rejected(scheme: BearerScheme, sub: Any) -> None:
    claims = payload()
    if sub is None:
        del claims["sub"]
    else:
        claims["sub"] = sub
    rejected(scheme, encode(claims))


def test_unicode_subject_is_accepted(scheme: BearerScheme) -> None:
    identity = authenticate(scheme, encode(payload(sub="Zoë")))
    assert identity is not None
    assert identity.login == "Zoë"


# --- size limit -------------------------------------------------------------------------------


def test_oversized_token_is_rejected(scheme: BearerScheme) -> None:
    small = scheme.create_token("alice", claims={"pad": "x" * 5000})
    assert len(small) <= MAX_TOKEN_LENGTH
    assert authenticate(scheme, small) is not None  # control: the size alone matters
    big = scheme.create_token("alice", claims={"pad": "x" * 7000})
    assert len(big) > MAX_TOKEN_LENGTH
    rejected(scheme, big)
    with pytest.raises(AuthenticationFailed):
        scheme.decode(big)


def test_max_token_length_is_8192() -> None:
    assert MAX_TOKEN_LENGTH == 8192


# --- create_token refusals --------------------------------------------------------------------


@pytest.mark.parametrize("claim", sorted(RESERVED_CLAIMS))
def test_create_token_refuses_reserved_claims(scheme: BearerScheme, claim: str) -> None:
    with pytest.raises(ConfigurationError, match=claim):
        scheme.create_token("alice", claims={claim: "admin", "scope": "read"})


def test_reserved_claims_cover_the_guard_claims() -> None:
    assert {"sub", "exp", "iat", "nbf", "jti", "iss", "aud", "type"} <= RESERVED_CLAIMS


@pytest.mark.parametrize("login", ["", "a,b", "alice\n", " alice", "a\x00", "x" * 256, 42, None])
def test_create_token_refuses_unsafe_login(scheme: BearerScheme, login: Any) -> None:
    with pytest.raises(ConfigurationError):
        scheme.create_token(login)


# --- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secret_minimum_length(algorithm: str, minimum: int) -> None:
    with pytest.raises(ConfigurationError, match=f"at least {minimum} bytes"):
        make_scheme(jwt_algorithm=algorithm, jwt_secret="s" * (minimum - 1))
    ok = make_scheme(jwt_algorithm=algorithm, jwt_secret="s" * minimum)
    assert ok.decode(ok.create_token("alice"))["sub"] == "alice"


def test_hmac_secret_length_is_counted_in_bytes() -> None:
    make_scheme(jwt_secret="é" * 16)  # 16 characters, 32 bytes: enough
    with pytest.raises(ConfigurationError):
        make_scheme(jwt_secret=b"s" * 31)


def test_missing_secret() -> None:
    with pytest.raises(ConfigurationError, match="GUARD_JWT_SECRET"):
        make_scheme(jwt_secret=None)


def test_public_key_with_hmac_is_refused(rsa_keys: KeyPair) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_JWT_PUBLIC_KEY"):
        make_scheme(jwt_public_key=rsa_keys.public_pem)


def test_rs256_without_public_key(rsa_keys: KeyPair) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_JWT_PUBLIC_KEY"):
        make_scheme(jwt_algorithm="RS256", jwt_secret=rsa_keys.private_pem)


@pytest.mark.parametrize(
    "public",
    [
        "garbage",
        b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
        JWT_SECRET,
    ],
)
def test_rs256_with_garbage_public_key(public: str | bytes) -> None:
    with pytest.raises(ConfigurationError, match="not valid RS256 keys"):
        make_scheme(jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=public)


def test_rs256_with_garbage_private_key(rsa_keys: KeyPair) -> None:
    with pytest.raises(ConfigurationError, match="not valid RS256 keys"):
        make_scheme(jwt_algorithm="RS256", jwt_secret="garbage", jwt_public_key=rsa_keys.public_pem)


def test_es256_with_rsa_keys_is_refused(rsa_keys: KeyPair) -> None:
    with pytest.raises(ConfigurationError):
        make_scheme(
            jwt_algorithm="ES256",
            jwt_secret=rsa_keys.private_pem,
            jwt_public_key=rsa_keys.public_pem,
        )


def test_es256_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    scheme = make_scheme(jwt_algorithm="ES256", jwt_secret=private, jwt_public_key=public)
    identity = authenticate(scheme, scheme.create_token("alice"))
    assert identity is not None
    assert identity.login == "alice"


def test_verify_only_rs256(rsa_keys: KeyPair) -> None:
    signer = make_scheme(
        jwt_algorithm="RS256", jwt_secret=rsa_keys.private_pem, jwt_public_key=rsa_keys.public_pem
    )
    verifier = make_scheme(
        jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=rsa_keys.public_pem
    )
    identity = authenticate(verifier, signer.create_token("alice"))
    assert identity is not None
    assert identity.login == "alice"
    with pytest.raises(ConfigurationError, match="GUARD_JWT_SECRET"):
        verifier.create_token("alice")


@pytest.mark.parametrize("size", [0, 3])
def test_verified_token_cache_size(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    scheme = make_scheme(jwt_cache_size=size)
    tokens = [scheme.create_token(f"user{i}") for i in range(5)]
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    for token in tokens + tokens[-3:]:  # the last three again: hits when they fit the cache
        assert scheme.decode(token)["sub"].startswith("user")
    # Size 0 verifies the signature on every request; size 3 keeps only the three newest.
    assert len(decoded) == (8 if size == 0 else 5)


@pytest.mark.parametrize("size", [-1, 1.5, True, "10"])
def test_jwt_cache_size_is_checked(size: Any) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_JWT_CACHE_SIZE"):
        GuardSettings.from_mapping({"GUARD_JWT_SECRET": JWT_SECRET, "GUARD_JWT_CACHE_SIZE": size})
