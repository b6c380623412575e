"""Durable pull consumer of another service's events.

- The effect and the processed-message record commit in one transaction; the message is
  acknowledged only after that commit, so a crash redelivers and the record skips it.
- NATS is only the transport: every message names the previous position of its tenant log.
  A consumer that sees a hole refills it from the source service's events feed first.
- A message that keeps failing is parked with its reason after `max_deliver` attempts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg
import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.db.pool import DbConnection, tenant_transaction
from shared.eventstore.envelope import EventEnvelope
from shared.messaging.streams import Subjects

log = logging.getLogger(__name__)

# Reads events of `tenant` after `after` up to `until` from the source service.
END_OF_LOG = 2**62
FeedReader = Callable[[str, int, int], Awaitable[list[EventEnvelope]]]


class EarlierEventFailed(Exception):
    """Refilling a hole failed on an earlier event: this message itself is not at fault."""


class Reaction(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def events(self) -> frozenset[str]:
        """Stable event names ("Institution.Registered") this reaction acts on."""

    async def handle(self, conn: DbConnection, event: EventEnvelope) -> None: ...


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        schema: str,
        source: str,
        pool: asyncpg.Pool[Any],
        js: JetStreamContext,
        subjects: Subjects,
        reactions: Sequence[Reaction],
        feed: FeedReader,
        max_deliver: int = 5,
        backoff_seconds: Sequence[float] = (0.5, 1.0, 2.0, 5.0),
    ) -> None:
        self.name = name
        self.schema = schema
        self.source = source
        self.pool = pool
        self.js = js
        self.subjects = subjects
        self.reactions = list(reactions)
        self.feed = feed
        self.max_deliver = max_deliver
        self.backoff = list(backoff_seconds)
        self.applied = 0
        self.refilled = 0
        self.parked = 0
        self._decoder = msgspec.json.Decoder(EventEnvelope)

    @property
    def durable(self) -> str:
        return self.name

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        return await self.js.pull_subscribe(
            self.subjects.of_service(self.source),
            durable=self.durable,
            stream=self.subjects.stream(self.source),
            config=ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=self.max_deliver,
                ack_wait=30,
            ),
        )

    async def run(self, stop: asyncio.Event, batch: int = 64) -> None:
        sub = await self.subscribe()
        while not stop.is_set():
            try:
                messages = await sub.fetch(batch, timeout=1.0)
            except NatsTimeoutError:
                continue
            except Exception:
                log.exception("consumer %s: fetch failed", self.name)
                await asyncio.sleep(1.0)
                continue
            for msg in messages:
                await self.handle_message(msg)

    async def handle_message(self, msg: Msg) -> None:
        try:
            event = self._decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            await self._park_raw(msg, f"undecodable message: {exc}")
            return
        if msg.subject != self.subjects.of(event) or event.service != self.source:
            # Only the relay publishes here; a message whose subject disagrees with its own
            # envelope was redirected by someone else (e.g. a push consumer's deliver subject
            # pointing into the stream) and must never be applied.
            await self._park_raw(msg, f"subject {msg.subject} does not match its envelope")
            return
        try:
            await self.process(event)
        except EarlierEventFailed as exc:
            # Wait for the earlier event to be applied or parked (its own message decides);
            # never park a healthy message for its predecessor's fault. If NATS gives up on
            # this one, the next message's hole check refills it from the feed.
            deliveries = msg.metadata.num_delivered or 1
            log.warning("consumer %s: %s waits for %s", self.name, event.message_id, exc)
            await msg.nak(delay=self.backoff[min(deliveries, len(self.backoff)) - 1])
            return
        except Exception as exc:
            deliveries = msg.metadata.num_delivered or 1
            if deliveries >= self.max_deliver:
                log.exception("consumer %s: parking %s", self.name, event.message_id)
                await self._park(event, msg, f"{type(exc).__name__}: {exc}", deliveries)
                await msg.ack()
                await self._resume_after(event.tenant)
            else:
                log.warning(
                    "consumer %s: %s failed (attempt %d), will retry: %s",
                    self.name,
                    event.message_id,
                    deliveries,
                    exc,
                )
                await msg.nak(delay=self.backoff[min(deliveries, len(self.backoff)) - 1])
            return
        await msg.ack()

    async def last_position(self, tenant: str) -> int:
        value = await self.pool.fetchval(
            f"""SELECT position FROM {self.schema}.consumer_positions
                WHERE consumer = $1 AND source = $2 AND tenant_id = $3""",
            self.name,
            self.source,
            tenant,
        )
        return int(value or 0)

    async def process(self, event: EventEnvelope) -> None:
        last = await self.last_position(event.tenant)
        if event.position <= last:
            return
        if event.previous_position is not None and event.previous_position > last:
            # JetStream lost or reordered something: take the missing events from the
            # source of truth before applying this one.
            missing = await self.feed(event.tenant, last, event.position - 1)
            for earlier in missing:
                try:
                    await self.apply(earlier)
                except Exception as exc:
                    raise EarlierEventFailed(
                        f"{earlier.message_id}: {type(exc).__name__}: {exc}"
                    ) from exc
                self.refilled += 1
        await self.apply(event)

    async def apply(self, event: EventEnvelope) -> bool:
        """Apply once: returns False when this message was already processed."""
        name = f"{event.aggregate}.{event.event}"
        async with tenant_transaction(self.pool, event.tenant) as conn:
            fresh = await conn.fetchval(
                f"""INSERT INTO {self.schema}.processed_messages (consumer, message_id)
                    VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true""",
                self.name,
                event.message_id,
            )
            if not fresh:
                return False
            for reaction in self.reactions:
                if name in reaction.events:
                    await reaction.handle(conn, event)
            await self._advance(conn, event.tenant, event.position)
        self.applied += 1
        return True

    async def _advance(self, conn: DbConnection, tenant: str, position: int) -> None:
        await conn.execute(
            f"""INSERT INTO {self.schema}.consumer_positions (consumer, source, tenant_id, position)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (consumer, source, tenant_id) DO UPDATE
                SET position = greatest(consumer_positions.position, EXCLUDED.position)""",
            self.name,
            self.source,
            tenant,
            position,
        )

    async def _park(self, event: EventEnvelope, msg: Msg, reason: str, deliveries: int) -> None:
        async with tenant_transaction(self.pool, event.tenant) as conn:
            await self._insert_parked(conn, event.message_id, msg, reason, deliveries)
            await conn.execute(
                f"""INSERT INTO {self.schema}.processed_messages (consumer, message_id)
                    VALUES ($1, $2) ON CONFLICT DO NOTHING""",
                self.name,
                event.message_id,
            )
            await self._advance(conn, event.tenant, event.position)
        self.parked += 1

    async def _resume_after(self, tenant: str) -> None:
        """Later events of the tenant may have used up their deliveries waiting for the one
        just parked, and no later message may come to reveal the gap: take them from the
        source now. Whatever fails here stays for redelivery or the next hole check."""
        last = await self.last_position(tenant)
        try:
            for later in await self.feed(tenant, last, END_OF_LOG):
                await self.apply(later)
                self.refilled += 1
        except Exception as exc:
            log.warning("consumer %s: resuming tenant %s after parking: %s", self.name, tenant, exc)

    async def _park_raw(self, msg: Msg, reason: str) -> None:
        message_id = (msg.headers or {}).get("Nats-Msg-Id", f"seq-{msg.metadata.sequence.stream}")
        async with self.pool.acquire() as conn:
            await self._insert_parked(
                conn, message_id, msg, reason, msg.metadata.num_delivered or 1
            )
        self.parked += 1
        await msg.ack()

    async def _insert_parked(
        self, conn: DbConnection, message_id: str, msg: Msg, reason: str, deliveries: int
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {self.schema}.parked_messages
                  (consumer, message_id, subject, payload, reason, deliveries)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (consumer, message_id) DO NOTHING""",
            self.name,
            message_id,
            msg.subject,
            msg.data,
            reason,
            deliveries,
        )
