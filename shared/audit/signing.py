"""Signed checkpoints of the tenant logs' hash chains: what is signed, the Ed25519 key that
signs, and the public keys a verifier trusts.

A checkpoint says "the chain of (service, tenant) had head hash H at position P", signed
over

    field("mpks-checkpoint-v1") || field(service) || field(tenant)
    || field(position, 8 bytes big-endian) || field(head hash)
    || field(signed_at, microseconds since 1970-01-01 UTC, 8 bytes big-endian)

(`field` as in `shared.audit.chain`: a 4-byte big-endian length, then the bytes).

`MPKS_CHAIN_SIGNING_KEY` holds a PEM private key (`openssl genpkey -algorithm ed25519`) or
the path of a file holding one. Unset, development derives a key from the JWT secret
(`HMAC-SHA256(secret, "chain:signing")` as the Ed25519 seed), as it derives the database
and NATS passwords: every process of a development stack signs with the same key and the
verifier knows it. With the public development secret such checkpoints prove nothing to
anyone who read this file; with a production JWT key a configured signing key is required.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.audit.chain import field
from shared.settings import Settings

CHECKPOINT_VERSION = "mpks-checkpoint-v1"


class SigningKeyMissing(RuntimeError):
    pass


def _pem(value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    return Path(value).expanduser().read_bytes()


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.chain_signing_key:
        key = serialization.load_pem_private_key(_pem(settings.chain_signing_key), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("MPKS_CHAIN_SIGNING_KEY is not an Ed25519 private key")
        return key
    if settings.is_production_key:
        raise SigningKeyMissing(
            "a production JWT key is configured but no MPKS_CHAIN_SIGNING_KEY: checkpoints "
            "of the logs must be signed with a key of production's own"
        )
    seed = hmac.new(settings.jwt_secret.encode(), b"chain:signing", hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def trusted_keys(
    settings: Settings, extra: Iterable[Ed25519PublicKey] = ()
) -> dict[str, Ed25519PublicKey]:
    """The keys a verifier accepts, by key id: the configured signing key's (when there is
    one to use) and `extra` (an auditor's own copies, retired keys)."""
    keys = {key_id(k): k for k in extra}
    try:
        own = signing_key(settings).public_key()
    except SigningKeyMissing:
        return keys
    keys[key_id(own)] = own
    return keys


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    tenant: str
    position: int
    head_hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes

    def verifies(self, keys: dict[str, Ed25519PublicKey]) -> bool:
        """Signed by one of `keys` (by key id), over exactly these values."""
        key = keys.get(self.key_id)
        if key is None:
            return False
        message = signed_bytes(
            self.service, self.tenant, self.position, self.head_hash, self.signed_at
        )
        try:
            key.verify(self.signature, message)
        except InvalidSignature:
            return False
        return True


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def signed_bytes(
    service: str, tenant: str, position: int, head_hash: bytes, signed_at: datetime
) -> bytes:
    return b"".join(
        (
            field(CHECKPOINT_VERSION.encode()),
            field(service.encode()),
            field(tenant.encode()),
            field(struct.pack(">q", position)),
            field(head_hash),
            field(struct.pack(">q", _micros(signed_at))),
        )
    )


def sign(
    key: Ed25519PrivateKey, service: str, tenant: str, position: int, head_hash: bytes
) -> Checkpoint:
    # Microseconds, as PostgreSQL keeps them: what is stored is what was signed.
    signed_at = datetime.now(UTC)
    return Checkpoint(
        service=service,
        tenant=tenant,
        position=position,
        head_hash=head_hash,
        signed_at=signed_at,
        key_id=key_id(key.public_key()),
        signature=key.sign(signed_bytes(service, tenant, position, head_hash, signed_at)),
    )
