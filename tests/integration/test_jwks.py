"""Production tokens verified against the identity provider's published keys (JWKS over
HTTP, served here by a local server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import InvalidToken, TokenVerifier
from shared.settings import Settings


def test_tokens_verify_against_the_identity_providers_jwks() -> None:
    """Keys published as a JWKS (rotated by the identity provider) are fetched by key id."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k-2026", "use": "sig", "alg": "RS256"}]})

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: object) -> None:
            """Quiet."""

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
        verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwks_url=url))
        token = jwt.encode(
            {"sub": "u-9", "tenant": "31", "roles": ["hr_officer"], "exp": int(time.time()) + 60},
            key,
            algorithm="RS256",
            headers={"kid": "k-2026"},
        )
        assert verifier.verify(token).sub == "u-9"
        unknown_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(
            {"sub": "x", "tenant": "31", "roles": [], "exp": int(time.time()) + 60},
            unknown_key,
            algorithm="RS256",
            headers={"kid": "k-2026"},
        )
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    finally:
        server.shutdown()
        thread.join()
