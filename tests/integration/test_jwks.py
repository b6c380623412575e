"""Production tokens verified against the identity provider's published keys (JWKS over
HTTP, served here by a local server)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import InvalidToken, TokenVerifier
from shared.resilience.faults import Unavailable
from shared.settings import Settings


def test_tokens_verify_against_the_identity_providers_jwks() -> None:
    """Keys published as a JWKS (rotated by the identity provider) are fetched by key id."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with _jwks(key, "k-2026") as url:
        verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwks_url=url))
        token = _signed(key, "k-2026", "u-9", "hr_officer")
        assert verifier.verify(token).sub == "u-9"
        unknown_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = _signed(unknown_key, "k-2026", "x")
        with pytest.raises(InvalidToken):
            verifier.verify(forged)


def _signed(key: rsa.RSAPrivateKey, kid: str, sub: str, *roles: str) -> str:
    """A token of tenant 31 for a minute, signed by `key` under key id `kid`."""
    claims = {"sub": sub, "tenant": "31", "roles": list(roles), "exp": int(time.time()) + 60}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@contextmanager
def _jwks(key: rsa.RSAPrivateKey, kid: str, delay: float = 0.0) -> Iterator[str]:
    """An identity provider's JWKS endpoint publishing `key` as `kid`, answering after
    `delay` seconds; yields its URL."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]})

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        thread.join()


async def test_a_slow_identity_provider_holds_up_only_the_request_that_needs_its_keys() -> None:
    """Fetching the keys is blocking HTTP: done off the event loop, which keeps serving the
    other requests meanwhile (tokens it verified lately need no fetch)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with _jwks(key, "k-slow", delay=1.0) as url:
        verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwks_url=url))
        token = _signed(key, "k-slow", "u-7", "auditor")
        ticks = 0
        verifying = asyncio.create_task(verifier.authenticate(token))
        while not verifying.done():
            await asyncio.sleep(0.01)
            ticks += 1
        assert (await verifying).sub == "u-7"
        # The loop ran all along the one-second fetch (a blocked loop would tick once).
        assert ticks >= 50, ticks
        started = time.monotonic()
        assert (await verifier.authenticate(token)).sub == "u-7"
        assert time.monotonic() - started < 0.1


async def test_an_identity_provider_that_does_not_answer_is_an_outage_not_a_bad_token() -> None:
    """No JWKS to check against says nothing of the token: a 503 with Retry-After (the
    HTTP edge's answer to `Unavailable`), not a 401 that would send the user to log in."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens there any more: the connection is refused.
    verifier = TokenVerifier(
        Settings(jwt_algorithm="RS256", jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = _signed(key, "k-1", "u-8", "auditor")
    with pytest.raises(Unavailable, match="identity provider"):
        await verifier.authenticate(token)
