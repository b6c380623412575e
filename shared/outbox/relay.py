"""Outbox relay: follows each tenant log and publishes every event to JetStream.

Position is stored only after JetStream acknowledged the whole batch. A crash in between
republishes the batch: JetStream drops the copies by `Nats-Msg-Id` within its duplicate
window, and consumers drop anything older by message id and position, so no consumer sees an
effect twice and nothing is lost.

NATS is only the transport and may lose its store (a restart with an empty or damaged data
folder). The relay notices, on every full pass, a stream that is gone or was created anew,
re-creates it, and rewinds each tenant to the last position the stream really holds, so
what the stream lost is published again from the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import asyncpg
import msgspec
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError, NotFoundError

from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantChanges, TenantLogs, run_follower
from shared.messaging.streams import Subjects, ensure_stream

log = logging.getLogger(__name__)

POSITION_HEADER = "Mpks-Position"
PREVIOUS_HEADER = "Mpks-Previous-Position"


class Relay:
    def __init__(
        self,
        *,
        schema: str,
        pool: asyncpg.Pool[Any],
        logs: TenantLogs,
        js: JetStreamContext,
        subjects: Subjects,
        batch_size: int = 256,
    ) -> None:
        self.subjects = subjects
        self.schema = schema
        self.pool = pool
        self.logs = logs
        self.js = js
        self.batch_size = batch_size
        self.published = 0
        self.lag = 0
        self.rewound = 0
        # Why the last pass failed (NATS or PostgreSQL unreachable), for health; None: fine.
        self.waiting_on: str | None = None
        self._encoder = msgspec.json.Encoder()
        # The stream as last seen (its creation time): another value means NATS lost it.
        self._stream_created: object = None

    async def positions(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            f"SELECT tenant_id, position FROM {self.schema}.relay_positions"
        )
        return {r["tenant_id"]: r["position"] for r in rows}

    async def publish_pending(self, tenants: Iterable[str] | None = None) -> int:
        """Publish everything committed and not yet published (of `tenants`, or of every
        tenant that is behind); returns how many events were published."""
        if tenants is None:
            async with self.pool.acquire() as conn:
                heads = await self.logs.heads(conn)
            # Measured before publishing: a relay that fails to publish shows what it owes.
            positions = await self.positions()
            self.lag = sum(max(0, h - positions.get(t, 0)) for t, h in heads.items())
            await self.check_stream(positions)
            tenants = [t for t, head in heads.items() if head > positions.get(t, 0)]
        else:
            positions = await self.positions()
        count = 0
        published: dict[str, int] = {}
        try:
            # Every tenant behind in one read and one publish of many messages in flight;
            # a tenant that filled its batch is read again in the next round.
            behind = list(tenants)
            while behind:
                async with self.pool.acquire() as conn:
                    batches = await self.logs.read_many(
                        conn, {t: positions.get(t, 0) for t in behind}, limit=self.batch_size
                    )
                batch = [event for tenant in behind for event in batches[tenant]]
                if not batch:
                    break
                try:
                    # At most a batch's worth of messages in flight at a time.
                    for start in range(0, len(batch), self.batch_size):
                        await self._publish(batch[start : start + self.batch_size])
                except NoStreamResponseError:
                    # The stream is gone (NATS lost its store): recreate it and rewind;
                    # the next pass publishes again what it lost.
                    self._stream_created = None
                    published.clear()
                    await self.check_stream(positions)
                    raise
                for tenant in behind:
                    if batches[tenant]:
                        published[tenant] = positions[tenant] = batches[tenant][-1].position
                count += len(batch)
                behind = [t for t in behind if len(batches[t]) == self.batch_size]
        finally:
            # Once per pass, not per batch: what was published is stored even when a later
            # batch fails.
            await self._store_positions(published)
        self.published += count
        return count

    async def check_stream(self, positions: dict[str, int]) -> None:
        """Re-create the stream if NATS lost it, and rewind every tenant to what the stream
        really holds when it is not the stream this relay published into (the stored
        positions and `positions`, the caller's copy of them)."""
        name = self.subjects.stream(self.schema)
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            info = None
        if info is not None and info.created == self._stream_created:
            return
        if info is None:
            log.warning("relay: stream %s is gone; creating it again", name)
            await ensure_stream(self.js, self.subjects, self.schema)
            info = await self.js.stream_info(name)
        for tenant in self.logs.tenants:
            position = positions.get(tenant, 0)
            if position == 0:
                continue
            held = await self._last_held(name, tenant)
            if held < position:
                log.warning(
                    "relay: stream %s holds tenant %s only up to %d, not %d: publishing again",
                    name,
                    tenant,
                    held,
                    position,
                )
                await self._store_positions({tenant: held})
                positions[tenant] = held
                self.rewound += position - held
        self._stream_created = info.created

    async def _last_held(self, stream: str, tenant: str) -> int:
        """The position of the last event of `tenant` the stream holds (0: none)."""
        try:
            msg = await self.js.get_last_msg(stream, self.subjects.of_tenant(self.schema, tenant))
        except NotFoundError:
            return 0
        return int((msg.headers or {}).get(POSITION_HEADER, 0))

    async def _publish(self, batch: list[EventEnvelope]) -> None:
        # Many publishes in flight at once: ~5x the rate of awaiting each ack in turn.
        acks = await asyncio.gather(
            *(
                self.js.publish(
                    self.subjects.of(event),
                    self._encoder.encode(event),
                    headers={
                        "Nats-Msg-Id": event.message_id,
                        POSITION_HEADER: str(event.position),
                        PREVIOUS_HEADER: ""
                        if event.previous_position is None
                        else str(event.previous_position),
                    },
                )
                for event in batch
            )
        )
        if len(acks) != len(batch):
            raise RuntimeError("JetStream acknowledged fewer messages than were published")

    async def _store_positions(self, positions: dict[str, int]) -> None:
        if not positions:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            # No flush to disk for this commit: a position lost in a crash only means the
            # batch is published again, which JetStream and consumers de-duplicate.
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute(
                f"""INSERT INTO {self.schema}.relay_positions (tenant_id, position)
                    SELECT * FROM unnest($1::text[], $2::bigint[])
                    ON CONFLICT (tenant_id) DO UPDATE SET position = EXCLUDED.position""",
                list(positions),
                list(positions.values()),
            )

    def _report(self, failing: str | None) -> None:
        self.waiting_on = failing

    async def run(self, changes: TenantChanges, stop: asyncio.Event, poll: float = 1.0) -> None:
        await run_follower(self.publish_pending, changes, stop, poll, "relay", self._report)
