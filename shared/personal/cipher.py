"""AES-256-GCM (the `cryptography` package) for personal values and subject keys.

A value is sealed under its subject's data key with associated data naming service, tenant,
subject and field, so a sealed value copied into another record, field, subject or tenant
does not open. A subject's data key is stored wrapped (sealed) under the master key with
associated data naming service, tenant and subject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.personal.fields import Sealed
from shared.settings import Settings

_NONCE = 12
_KEY_BYTES = 32
_json = msgspec.json.Encoder()


class MissingMasterKey(RuntimeError):
    """A production configuration without MPKS_MASTER_KEY: refused at start."""


class CannotOpen(ValueError):
    """A sealed value or wrapped key that does not open under this key and context: tampered
    with, moved to another record, field or tenant, or sealed under another master key."""


def master_key(settings: Settings) -> bytes:
    """MPKS_MASTER_KEY (32 bytes, base64). Unset: in development a key derived from the
    development JWT key, as the database password is (`shared.db.roles`); with a production
    key configuration the services refuse to start."""
    if settings.master_key is not None:
        try:
            key = base64.b64decode(settings.master_key, validate=True)
        except ValueError:
            key = b""
        if len(key) != _KEY_BYTES:
            raise MissingMasterKey("MPKS_MASTER_KEY must be 32 bytes in base64")
        return key
    if settings.is_production_key:
        raise MissingMasterKey(
            "a production key is configured: set MPKS_MASTER_KEY (32 random bytes, base64), "
            "the key the personal-data keys are encrypted under"
        )
    return hmac.new(settings.jwt_secret.encode(), b"mpks:master-key", hashlib.sha256).digest()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=_KEY_BYTES * 8)


def _seal(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context)


def _open(key: bytes, sealed: bytes, context: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], context)
    except (InvalidTag, ValueError) as exc:
        raise CannotOpen("the sealed data does not open under this key and context") from exc


def _key_context(service: str, tenant: str, subject: str) -> bytes:
    return f"mpks/subject-key/{service}/{tenant}/{subject}".encode()


def _value_context(service: str, tenant: str, subject: str, field: str) -> bytes:
    return f"mpks/personal/{service}/{tenant}/{subject}/{field}".encode()


def wrap_key(master: bytes, data_key: bytes, *, service: str, tenant: str, subject: str) -> bytes:
    return _seal(master, data_key, _key_context(service, tenant, subject))


def unwrap_key(master: bytes, wrapped: bytes, *, service: str, tenant: str, subject: str) -> bytes:
    return _open(master, wrapped, _key_context(service, tenant, subject))


def seal_value(
    data_key: bytes, value: Any, *, service: str, tenant: str, subject: str, field: str
) -> dict[str, str]:
    ciphertext = _seal(
        data_key, _json.encode(value), _value_context(service, tenant, subject, field)
    )
    sealed: dict[str, str] = msgspec.to_builtins(
        Sealed(ciphertext=base64.b64encode(ciphertext).decode(), subject=subject)
    )
    return sealed


def open_value(data_key: bytes, sealed: Any, *, service: str, tenant: str, field: str) -> Any:
    value = msgspec.convert(sealed, Sealed)
    try:
        ciphertext = base64.b64decode(value.ciphertext, validate=True)
    except ValueError as exc:
        raise CannotOpen("the sealed value is not base64") from exc
    context = _value_context(service, tenant, value.subject, field)
    return msgspec.json.decode(_open(data_key, ciphertext, context))
