"""Signed checkpoints of the tenant logs' hash chains, and where they are kept.

A checkpoint (`shared.audit.signing`) says "the chain of (service, tenant) had head hash
H at position P", signed with Ed25519. The worker that leads the job `checkpoints` signs one
per tenant log once `checkpoint_every_events` events or `checkpoint_every_seconds` seconds
passed since the last, but only after it has recomputed the chain from that last
checkpoint: a signature vouches for every event up to its position. Each checkpoint is
stored in `<service>.chain_checkpoints` and published to the JetStream stream
`<PREFIX>_CHECKPOINTS` (subject `<prefix>.checkpoints.<tenant>.<service>`, one
`Nats-Msg-Id` per checkpoint), which refuses to delete or purge messages: someone who can
rewrite the database still cannot make the published checkpoints disappear, and a log cut
short after a checkpoint no longer reaches it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.audit.signing import Checkpoint, key_id, sign
from shared.audit.verify import ChainSegment, LogReport, verify_log, verify_segment
from shared.db.pool import DbConnection, tenant_transaction
from shared.eventstore.logs import TenantLogs
from shared.resilience.faults import describe
from shared.resilience.supervisor import pause

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 600.0


# --- where checkpoints are kept ----------------------------------------------------------


def stream_name(prefix: str) -> str:
    return f"{prefix.upper()}_CHECKPOINTS"


def subject(prefix: str, tenant: str, service: str) -> str:
    """The tenant is a subject token, as for events (`shared.messaging.streams`)."""
    return f"{prefix}.checkpoints.{tenant}.{service}"


async def ensure_checkpoint_stream(js: JetStreamContext, prefix: str) -> None:
    config = StreamConfig(
        name=stream_name(prefix),
        subjects=[f"{prefix}.checkpoints.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        # What makes the stream a record: no message or range of messages can be removed
        # through the API (only deleting the whole stream, which the verifier notices as
        # checkpoints missing and an operator as an outage).
        deny_delete=True,
        deny_purge=True,
    )
    try:
        await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


async def publish(js: JetStreamContext, prefix: str, checkpoint: Checkpoint) -> None:
    await js.publish(
        subject(prefix, checkpoint.tenant, checkpoint.service),
        msgspec.json.encode(checkpoint),
        headers={
            "Nats-Msg-Id": f"checkpoint/{checkpoint.service}/{checkpoint.tenant}/"
            f"{checkpoint.position}"
        },
    )


_COLUMNS = "tenant_id, position, head_hash, signed_at, key_id, signature"


def _from_row(service: str, row: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        service=service,
        tenant=row["tenant_id"],
        position=row["position"],
        head_hash=bytes(row["head_hash"]),
        signed_at=row["signed_at"],
        key_id=row["key_id"],
        signature=bytes(row["signature"]),
    )


async def stored_checkpoints(conn: DbConnection, service: str, tenant: str) -> list[Checkpoint]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {service}.chain_checkpoints
            WHERE tenant_id = $1 ORDER BY position""",
        tenant,
    )
    return [_from_row(service, r) for r in rows]


async def published_checkpoints(
    js: JetStreamContext, prefix: str, service: str, tenant: str, wait: float = 5.0
) -> list[Checkpoint]:
    """Every checkpoint of the log the stream holds, in the order published."""
    wanted = subject(prefix, tenant, service)
    try:
        await js.get_last_msg(stream_name(prefix), wanted)
    except NotFoundError:
        return []
    found: list[Checkpoint] = []
    sub = await js.pull_subscribe(wanted, stream=stream_name(prefix))
    try:
        while True:
            messages = await sub.fetch(256, timeout=wait)
            for message in messages:
                found.append(msgspec.json.decode(message.data, type=Checkpoint))
            if messages[-1].metadata.num_pending == 0:
                return found
    finally:
        await sub.unsubscribe()


async def audit_log(
    conn: DbConnection,
    service: str,
    tenant: str,
    *,
    keys: dict[str, Ed25519PublicKey],
    js: JetStreamContext | None,
    prefix: str,
    progress: Callable[[int], None] | None = None,
) -> LogReport:
    """Verify one log against every checkpoint in the database and, with `js`, in the
    stream; in the caller's transaction (the owner's, or one naming the tenant)."""
    checkpoints = await stored_checkpoints(conn, service, tenant)
    sources = ["database"]
    if js is not None:
        checkpoints += await published_checkpoints(js, prefix, service, tenant)
        sources.append("stream")
    report = await verify_log(
        conn, service, tenant, checkpoints=checkpoints, keys=keys, progress=progress
    )
    return msgspec.structs.replace(report, sources=sources)


# --- the signer ----------------------------------------------------------------------------


class Checkpointer:
    """Signs and publishes checkpoints of every tenant log of one service (a background
    job: one worker leads it)."""

    def __init__(
        self,
        *,
        service: str,
        pool: asyncpg.Pool[Any],
        logs: TenantLogs,
        js: JetStreamContext,
        prefix: str,
        key: Ed25519PrivateKey,
        every_events: int,
        every_seconds: float,
    ) -> None:
        self.service = service
        self.pool = pool
        self.logs = logs
        self.js = js
        self.prefix = prefix
        self.key = key
        self.keys = {key_id(key.public_key()): key.public_key()}
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.signed = 0
        # Why the last pass failed, or which chains it refused to sign, for health.
        self.waiting_on: str | None = None
        self._stream_ready = False

    async def _last(self) -> dict[str, Checkpoint]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT DISTINCT ON (tenant_id) {_COLUMNS}
                    FROM {self.service}.chain_checkpoints
                    ORDER BY tenant_id, position DESC"""
            )
        return {r["tenant_id"]: _from_row(self.service, r) for r in rows}

    def _due(self, head: int, last: Checkpoint | None, now: datetime) -> bool:
        if last is None:
            return head > 0
        if head <= last.position:
            return False
        return (
            head - last.position >= self.every_events
            or (now - last.signed_at).total_seconds() >= self.every_seconds
        )

    async def checkpoint_due(self, tenants: Iterable[str] | None = None) -> list[Checkpoint]:
        """Sign a checkpoint at the head of every log that is due one (of `tenants`, or of
        all), then publish every checkpoint not yet published; returns those signed."""
        async with self.pool.acquire() as conn:
            heads = await self.logs.heads(conn)
        last = await self._last()
        now = datetime.now(UTC)
        wanted = set(heads) if tenants is None else set(tenants) & set(heads)
        signed: list[Checkpoint] = []
        refused: list[str] = []
        for tenant in sorted(wanted):
            if not self._due(heads[tenant], last.get(tenant), now):
                continue
            checkpoint = await self._sign(tenant, last.get(tenant))
            if checkpoint is None:
                refused.append(tenant)
            else:
                signed.append(checkpoint)
        await self.publish_pending()
        self.signed += len(signed)
        self.waiting_on = (
            f"chain broken, not signed: tenants {', '.join(refused)}" if refused else None
        )
        return signed

    async def _sign(self, tenant: str, last: Checkpoint | None) -> Checkpoint | None:
        start = ChainSegment(position=0, head_hash=None)
        if last is not None:
            if not last.verifies(self.keys):
                log.error(
                    "checkpoints: the last checkpoint of %s/%s (position %d) does not verify "
                    "with this key; not signing",
                    self.service,
                    tenant,
                    last.position,
                )
                return None
            start = ChainSegment(position=last.position, head_hash=last.head_hash)
        async with tenant_transaction(self.pool, tenant) as conn:
            outcome = await verify_segment(conn, self.service, tenant, start)
        if outcome.problem is not None:
            log.error(
                "checkpoints: the chain of %s/%s is broken at position %d (%s): not signing",
                self.service,
                tenant,
                outcome.problem.position,
                outcome.problem.kind,
            )
            return None
        if outcome.head_hash is None or outcome.position == start.position:
            return None
        checkpoint = sign(self.key, self.service, tenant, outcome.position, outcome.head_hash)
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"""INSERT INTO {self.service}.chain_checkpoints
                        (tenant_id, position, head_hash, signed_at, key_id, signature)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                tenant,
                checkpoint.position,
                checkpoint.head_hash,
                checkpoint.signed_at,
                checkpoint.key_id,
                checkpoint.signature,
            )
        return checkpoint

    async def publish_pending(self) -> int:
        """Publish the stored checkpoints JetStream has not acknowledged (a crash between
        the two is published again; the stream drops the copy by its message id)."""
        if not self._stream_ready:
            await ensure_checkpoint_stream(self.js, self.prefix)
            self._stream_ready = True
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_COLUMNS} FROM {self.service}.chain_checkpoints
                    WHERE NOT published ORDER BY tenant_id, position"""
            )
        for r in rows:
            await publish(self.js, self.prefix, _from_row(self.service, r))
            async with self.pool.acquire() as conn:
                await conn.execute(
                    f"""UPDATE {self.service}.chain_checkpoints SET published = true
                        WHERE tenant_id = $1 AND position = $2""",
                    r["tenant_id"],
                    r["position"],
                )
        return len(rows)

    async def run(self, stop: asyncio.Event, poll: float = 5.0) -> None:
        while not stop.is_set():
            try:
                await self.checkpoint_due()
            except Exception as exc:
                log.warning("checkpoints failed; retrying: %s", exc)
                self.waiting_on = describe(exc)
                self._stream_ready = False
            await pause(stop, poll)
