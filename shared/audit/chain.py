"""The hash chain over each tenant log ("chain v1"), defined once: the bytes each event's hash
covers, in Python (verify, export) and in SQL (the append function and the migration's
backfill), which must agree byte for byte.

An event's hash is

    hash(n) = SHA-256(hash(n-1) || canonical(n))

with `hash(0)` (before a log's first event) 32 zero bytes, and `canonical` the
concatenation of these fields, each as a 4-byte big-endian length followed by its bytes
(the length prefix keeps one field's bytes from being shifted into another's):

    1. "mpks-chain-v1" (ASCII): the definition's version
    2. the service ("registry"), UTF-8
    3. the tenant ("35"), UTF-8
    4. the position (`notification_id`), 8 bytes, big-endian signed
    5. the record (aggregate) id (`originator_id`), the UUID's 16 bytes
    6. the record's version (`originator_version`), 8 bytes, big-endian signed
    7. the event's stable name (`topic`, "Institution.Registered"), UTF-8
    8. the stored state (`state`) exactly as stored

Service, tenant and position are in the hash, so a row copied to another log or another
place in its log no longer matches. Positions have no gaps (the append function numbers
each event `head + 1`, under the table lock every append takes), so a missing position
is a removed event.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from uuid import UUID

from shared.db.pool import DbConnection
from shared.eventstore.stores import events_table, tenant_schema

CHAIN_VERSION = "mpks-chain-v1"
GENESIS = bytes(32)
HASH_BYTES = 32


def field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def log_prefix(service: str, tenant: str) -> bytes:
    """Fields 1-3: the same for every event of one log."""
    return field(CHAIN_VERSION.encode()) + field(service.encode()) + field(tenant.encode())


def canonical(
    prefix: bytes, position: int, record_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    """An event's canonical bytes; `prefix` is `log_prefix(service, tenant)`."""
    return b"".join(
        (
            prefix,
            field(struct.pack(">q", position)),
            field(record_id.bytes),
            field(struct.pack(">q", version)),
            field(topic.encode()),
            field(state),
        )
    )


def event_hash(
    previous: bytes,
    prefix: bytes,
    position: int,
    record_id: UUID,
    version: int,
    topic: str,
    state: bytes,
) -> bytes:
    """The hash stored with an event (its `hash` column): `previous` is the hash of the
    event before it in the log, `GENESIS` for the first."""
    return hashlib.sha256(
        previous + canonical(prefix, position, record_id, version, topic, state)
    ).digest()


class LogChain:
    """Walks one log's chain in position order: `link` gives each event's hash (what its
    `hash` column must hold) and moves on. For verify, export and tests alike."""

    def __init__(self, service: str, tenant: str, previous: bytes = GENESIS) -> None:
        self.prefix = log_prefix(service, tenant)
        self.previous = previous

    def hash_of(
        self, position: int, record_id: UUID, version: int, topic: str, state: bytes
    ) -> bytes:
        """The hash the event would have after the current head, without moving on."""
        return event_hash(self.previous, self.prefix, position, record_id, version, topic, state)

    def link(self, position: int, record_id: UUID, version: int, topic: str, state: bytes) -> bytes:
        self.previous = self.hash_of(position, record_id, version, topic, state)
        return self.previous


def _bytea(value: bytes) -> str:
    return f"'\\x{value.hex()}'::bytea"


def link_sql(
    service: str,
    tenant: str,
    *,
    previous: str,
    position: str,
    record_id: str,
    version: str,
    topic: str,
    state: str,
) -> str:
    """The same hash as `event_hash` as a SQL expression over the given SQL expressions
    (PostgreSQL's `int8send`/`uuid_send` are big-endian, its `sha256` is SHA-256)."""
    topic_bytes = f"convert_to({topic}, 'UTF8')"
    return (
        f"sha256({previous} || {_bytea(log_prefix(service, tenant))}"
        f" || '\\x00000008'::bytea || int8send({position})"
        f" || '\\x00000010'::bytea || uuid_send({record_id})"
        f" || '\\x00000008'::bytea || int8send({version})"
        f" || int4send(octet_length({topic_bytes})) || {topic_bytes}"
        f" || int4send(octet_length({state})) || {state})"
    )


GENESIS_SQL = _bytea(GENESIS)


def _backfill_sql(service: str, tenant: str) -> str:
    schema = tenant_schema(service, tenant)
    table = f"{schema}.{events_table(service)}"
    link = link_sql(
        service,
        tenant,
        previous="previous",
        position="r.notification_id",
        record_id="r.originator_id",
        version="r.originator_version",
        topic="r.topic",
        state="r.state",
    )
    return f"""DO $$
DECLARE
  first bigint;
  previous bytea;
  r record;
BEGIN
  LOCK TABLE {table} IN EXCLUSIVE MODE;
  SELECT min(notification_id) INTO first FROM {table} WHERE hash IS NULL;
  IF first IS NULL THEN
    RETURN;
  END IF;
  SELECT e.hash INTO previous FROM {table} e
    WHERE e.notification_id < first ORDER BY e.notification_id DESC LIMIT 1;
  IF NOT FOUND THEN
    previous := {GENESIS_SQL};
  END IF;
  FOR r IN SELECT notification_id, originator_id, originator_version, topic, state
           FROM {table} WHERE notification_id >= first ORDER BY notification_id LOOP
    previous := {link};
    UPDATE {table} SET hash = previous WHERE notification_id = r.notification_id;
  END LOOP;
END $$"""


async def install_chain(conn: DbConnection, service: str, tenants: Iterable[str]) -> None:
    """Give every tenant log of `service` its `hash` column, and chain the events that have
    none, in position order from the last one that has: the events recorded before the
    chain existed (and any a process of an older version appended during a rolling
    upgrade). Run by the migration, as the owner; idempotent."""
    tenants = sorted(tenants)
    table = events_table(service)
    chained = {
        r["table_schema"]
        for r in await conn.fetch(
            """SELECT table_schema FROM information_schema.columns
               WHERE table_name = $1 AND column_name = 'hash'
                 AND table_schema = ANY($2::text[])""",
            table,
            [tenant_schema(service, t) for t in tenants],
        )
    }
    for tenant in tenants:
        schema = tenant_schema(service, tenant)
        async with conn.transaction():
            if schema not in chained:
                # Altering the table locks it: only when the column is missing.
                await conn.execute(
                    f"ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS hash bytea; "
                    f"CREATE INDEX IF NOT EXISTS {table}_unchained "
                    f"ON {schema}.{table} (notification_id) WHERE hash IS NULL"
                )
            if await conn.fetchval(
                f"SELECT EXISTS (SELECT FROM {schema}.{table} WHERE hash IS NULL)"
            ):
                await conn.execute(_backfill_sql(service, tenant))
