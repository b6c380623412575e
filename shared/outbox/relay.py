"""Outbox relay: follows each tenant log and publishes every event to JetStream.

Position is stored only after JetStream acknowledged the whole batch. A crash in between
republishes the batch: JetStream drops the copies by `Nats-Msg-Id` within its duplicate
window, and consumers drop anything older by message id and position, so no consumer sees an
effect twice and nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import asyncpg
import msgspec
from nats.js import JetStreamContext

from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantChanges, TenantLogs, run_follower
from shared.messaging.streams import Subjects

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
        self._encoder = msgspec.json.Encoder()

    async def positions(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            f"SELECT tenant_id, position FROM {self.schema}.relay_positions"
        )
        return {r["tenant_id"]: r["position"] for r in rows}

    async def publish_pending(self, tenants: Iterable[str] | None = None) -> int:
        """Publish everything committed and not yet published (of `tenants`, or of every
        tenant that is behind); returns how many events were published."""
        positions = await self.positions()
        if tenants is None:
            async with self.pool.acquire() as conn:
                heads = await self.logs.heads(conn)
            tenants = [t for t, head in heads.items() if head > positions.get(t, 0)]
        count = 0
        for tenant in tenants:
            position = positions.get(tenant, 0)
            while True:
                async with self.pool.acquire() as conn:
                    batch = await self.logs.read(
                        conn, tenant, after=position, limit=self.batch_size
                    )
                if not batch:
                    break
                await self._publish(batch)
                position = batch[-1].position
                await self._store_position(tenant, position)
                positions[tenant] = position
                count += len(batch)
                if len(batch) < self.batch_size:
                    break
        self.published += count
        return count

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

    async def _store_position(self, tenant: str, position: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # No flush to disk for this commit: a position lost in a crash only means the
            # batch is published again, which JetStream and consumers de-duplicate.
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute(
                f"""INSERT INTO {self.schema}.relay_positions (tenant_id, position)
                    VALUES ($1, $2)
                    ON CONFLICT (tenant_id) DO UPDATE SET position = EXCLUDED.position""",
                tenant,
                position,
            )

    async def run(self, changes: TenantChanges, stop: asyncio.Event, poll: float = 1.0) -> None:
        await run_follower(self._publish_and_measure, changes, stop, poll, "relay")

    async def _publish_and_measure(self, tenants: Iterable[str] | None) -> int:
        count = await self.publish_pending(tenants)
        if tenants is None:
            await self._measure_lag()
        return count

    async def _measure_lag(self) -> None:
        positions = await self.positions()
        async with self.pool.acquire() as conn:
            heads = await self.logs.heads(conn)
        self.lag = sum(max(0, h - positions.get(t, 0)) for t, h in heads.items())
