"""Production tokens (RS256 with the identity provider's public key) and the JSON log line
format operators search by correlation id."""

from __future__ import annotations

import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import InvalidToken, Role, TokenVerifier, mint_dev_token
from shared.observability import JsonFormatter, correlation_id
from shared.settings import Settings


def _keypair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def test_rs256_tokens_of_the_identity_provider_verify_with_its_public_key() -> None:
    private, public = _keypair()
    settings = Settings(
        jwt_algorithm="RS256", jwt_public_key=public, jwt_issuer="https://sso.example"
    )
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "u-1",
            "tenant": "35",
            "roles": ["auditor"],
            "iss": "https://sso.example",
            "iat": now,
            "exp": now + 60,
        },
        private,
        algorithm="RS256",
    )
    principal = TokenVerifier(settings).verify(token)
    assert principal.sub == "u-1"
    assert principal.roles == frozenset({Role.AUDITOR})


def test_rs256_refuses_hs256_tokens_and_other_issuers() -> None:
    private, public = _keypair()
    settings = Settings(
        jwt_algorithm="RS256", jwt_public_key=public, jwt_issuer="https://sso.example"
    )
    verifier = TokenVerifier(settings)
    # A token signed with the (public) development key must not pass in production.
    dev = mint_dev_token(Settings(), sub="x", tenant="35", roles=[Role.NATIONAL_ADMIN])
    with pytest.raises(InvalidToken):
        verifier.verify(dev)
    now = int(time.time())
    foreign = jwt.encode(
        {"sub": "u", "tenant": "35", "roles": [], "iss": "https://evil", "exp": now + 60},
        private,
        algorithm="RS256",
    )
    with pytest.raises(InvalidToken):
        verifier.verify(foreign)
    assert settings.is_production_key


def test_log_lines_are_json_with_the_correlation_id() -> None:
    formatter = JsonFormatter("registry")
    token = correlation_id.set("corr-123")
    try:
        record = logging.LogRecord("mpks.http", logging.INFO, __file__, 1, "request", (), None)
        record.fields = {"status": 201, "route": "/v1/tenants/{tenant}/institutions"}
        line = json.loads(formatter.format(record))
    finally:
        correlation_id.reset(token)
    assert line["correlation_id"] == "corr-123"
    assert line["service"] == "registry"
    assert line["status"] == 201
    assert line["level"] == "info"
