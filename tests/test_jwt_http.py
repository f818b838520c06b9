"""JWT attacks over HTTP (reference/flask_security.md §6.1 items 17-23)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from flask_casbin_guard import CurrentUser, Flask
from helpers import JWT_SECRET, bearer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """A token signed with HMAC-SHA256 over whatever header we like (PyJWT refuses some)."""
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(signature)}"


def forge_hs512(payload: dict[str, Any], key: bytes) -> str:
    signing = f"{b64(json.dumps({'alg': 'HS512', 'typ': 'JWT'}).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing}.{b64(hmac.new(key, signing.encode(), hashlib.sha512).digest())}"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **extra}


def make_client(guard_config: dict[str, Any], **extra: Any) -> FlaskClient:
    app = Flask(__name__)
    app.config.update(guard_config, GUARD_AUTH=["bearer"], **extra)

    @app.get("/me", authorize="AUTH")
    def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    return app.test_client()


@pytest.fixture
def client(guard_config: dict[str, Any]) -> FlaskClient:
    return make_client(guard_config)


def test_a_valid_token_passes(client: FlaskClient) -> None:
    token = jwt.encode(claims(), JWT_SECRET, algorithm="HS256")
    assert client.get("/me", headers=bearer(token)).json == {"user": "alice"}


def test_alg_none_and_other_algorithms(client: FlaskClient) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64(json.dumps(claims()).encode())}."
    hs512 = forge_hs512(claims(), JWT_SECRET.encode())
    for token in (unsigned, hs512):
        response = client.get("/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.json["message"] == "invalid credentials"


def test_hs256_signed_with_the_rsa_public_key(guard_config: dict[str, Any]) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    client = make_client(
        guard_config,
        GUARD_JWT_ALGORITHM="RS256",
        GUARD_JWT_SECRET=private_pem,
        GUARD_JWT_PUBLIC_KEY=public_pem,
    )
    good = jwt.encode(claims(), private_pem, algorithm="RS256")
    assert client.get("/me", headers=bearer(good)).status_code == 200
    confused = forge({"alg": "HS256", "typ": "JWT"}, claims(), public_pem)
    assert client.get("/me", headers=bearer(confused)).status_code == 401


def test_exp_is_required_and_enforced(client: FlaskClient) -> None:
    no_exp = jwt.encode({"sub": "alice"}, JWT_SECRET, algorithm="HS256")
    expired = jwt.encode(claims(exp=int(time.time()) - 60), JWT_SECRET, algorithm="HS256")
    for token in (no_exp, expired):
        assert client.get("/me", headers=bearer(token)).status_code == 401


def test_issuer_and_audience(guard_config: dict[str, Any]) -> None:
    client = make_client(guard_config, GUARD_JWT_ISSUER="https://idp", GUARD_JWT_AUDIENCE="acme")
    good = jwt.encode(claims(iss="https://idp", aud="acme"), JWT_SECRET, algorithm="HS256")
    assert client.get("/me", headers=bearer(good)).status_code == 200
    for bad in (
        claims(iss="https://evil", aud="acme"),
        claims(iss="https://idp", aud="other"),
        claims(),
    ):
        assert (
            client.get(
                "/me", headers=bearer(jwt.encode(bad, JWT_SECRET, algorithm="HS256"))
            ).status_code
            == 401
        )


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A local TCP listener that records any connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                seen.append(connection.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/keys.json", seen
    stop.set()
    thread.join(2)
    server.close()


def test_jku_x5u_jwk_and_kid_never_choose_the_key(
    client: FlaskClient, listener: tuple[str, list[bytes]]
) -> None:
    url, seen = listener
    attacker = b"attacker-chosen-secret-attacker-chosen-secret"
    headers = [
        {"alg": "HS256", "jku": url},
        {"alg": "HS256", "x5u": url},
        {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(attacker)}},
        {"alg": "HS256", "kid": "../../../dev/null"},
        {"alg": "HS256", "kid": "x' UNION SELECT 'key"},
    ]
    for header in headers:
        assert (
            client.get("/me", headers=bearer(forge(header, claims(), attacker))).status_code == 401
        )
    # A right signature with a hostile kid/jku still verifies with the configured key only.
    right = forge(
        {"alg": "HS256", "typ": "JWT", "jku": url, "kid": "../x"}, claims(), JWT_SECRET.encode()
    )
    assert client.get("/me", headers=bearer(right)).status_code == 200
    time.sleep(0.3)
    assert seen == []  # nothing ever connected to the URL the tokens named


def test_tokens_are_never_read_from_the_query_string(client: FlaskClient) -> None:
    token = jwt.encode(claims(), JWT_SECRET, algorithm="HS256")
    for name in ("access_token", "token", "jwt", "auth"):
        assert client.get(f"/me?{name}={token}").status_code == 401
