"""Chain v1 and checkpoint signatures as the README defines them: export, verify and the
append function must agree on these bytes forever, and each field counts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.audit.chain import GENESIS, LogChain, canonical, event_hash, log_prefix
from shared.audit.signing import key_id, sign, signing_key, trusted_keys
from shared.settings import Settings

RECORD = UUID("00000000-0000-0000-0000-000000000001")


def test_the_canonical_bytes_are_the_documented_length_prefixed_fields() -> None:
    spelled_out = bytes.fromhex(
        "0000000d" + b"mpks-chain-v1".hex()
        + "00000008" + b"registry".hex()
        + "00000002" + b"35".hex()
        + "00000008" + "0000000000000001"  # position 1
        + "00000010" + "00000000000000000000000000000001"  # the record id's 16 bytes
        + "00000008" + "0000000000000002"  # version 2
        + "00000016" + b"Institution.Registered".hex()
        + "00000002" + b"{}".hex()
    )  # fmt: skip
    prefix = log_prefix("registry", "35")

    assert canonical(prefix, 1, RECORD, 2, "Institution.Registered", b"{}") == spelled_out
    assert event_hash(GENESIS, prefix, 1, RECORD, 2, "Institution.Registered", b"{}") == (
        hashlib.sha256(bytes(32) + spelled_out).digest()
    )


@pytest.mark.parametrize(
    "other",
    [
        ("registry", "36", 1, RECORD, 2, "Institution.Registered", b"{}"),
        ("cases", "35", 1, RECORD, 2, "Institution.Registered", b"{}"),
        ("registry", "35", 2, RECORD, 2, "Institution.Registered", b"{}"),
        ("registry", "35", 1, UUID(int=2), 2, "Institution.Registered", b"{}"),
        ("registry", "35", 1, RECORD, 3, "Institution.Registered", b"{}"),
        # The same bytes, moved from the name into the state: the length prefix tells.
        ("registry", "35", 1, RECORD, 2, "Institution.Registered{", b"}"),
    ],
    ids=["tenant", "service", "position", "record", "version", "shifted bytes"],
)
def test_every_field_changes_the_hash(other: tuple[str, str, int, UUID, int, str, bytes]) -> None:
    service, tenant, *event = other
    original = LogChain("registry", "35").link(1, RECORD, 2, "Institution.Registered", b"{}")
    assert LogChain(service, tenant).link(*event) != original  # type: ignore[arg-type]


def test_each_hash_covers_the_one_before() -> None:
    chain = LogChain("registry", "35")
    first = chain.link(1, RECORD, 1, "Institution.Registered", b"{}")
    second = chain.link(2, RECORD, 2, "Institution.Renamed", b"{}")
    prefix = log_prefix("registry", "35")
    assert second == event_hash(first, prefix, 2, RECORD, 2, "Institution.Renamed", b"{}")
    assert second != event_hash(GENESIS, prefix, 2, RECORD, 2, "Institution.Renamed", b"{}")


def test_a_checkpoint_verifies_only_as_signed_and_only_with_its_key() -> None:
    key = Ed25519PrivateKey.generate()
    keys = {key_id(key.public_key()): key.public_key()}
    checkpoint = sign(key, "registry", "35", 10, bytes(range(32)))
    assert checkpoint.verifies(keys)
    # Through JSON (the stream's copy) and back.
    assert msgspec.json.decode(msgspec.json.encode(checkpoint), type=type(checkpoint)).verifies(
        keys
    )
    for change in (
        {"tenant": "36"},
        {"service": "hr"},
        {"position": 11},
        {"head_hash": bytes(32)},
        {"signed_at": datetime(2026, 1, 1, tzinfo=UTC)},
    ):
        assert not msgspec.structs.replace(checkpoint, **change).verifies(keys), change
    stranger = Ed25519PrivateKey.generate()
    assert not sign(stranger, "registry", "35", 10, bytes(32)).verifies(keys)


def test_production_needs_a_signing_key_of_its_own(tmp_path: Path) -> None:
    production = Settings(jwt_secret="a-production-secret-" * 3)
    with pytest.raises(RuntimeError, match="MPKS_CHAIN_SIGNING_KEY"):
        signing_key(production)
    # A verifier without one trusts only the keys it is given.
    assert trusted_keys(production) == {}
    own = Ed25519PrivateKey.generate()
    pem = own.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "chain.pem").write_bytes(pem)
    for configured in (pem.decode(), str(tmp_path / "chain.pem")):
        key = signing_key(production.replace(chain_signing_key=configured))
        assert key_id(key.public_key()) == key_id(own.public_key())
