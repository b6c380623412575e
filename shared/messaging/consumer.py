"""Durable pull consumer of another service's events.

- The effect and the processed-message record commit in one transaction; the message is
  acknowledged only after that commit, so a crash redelivers and the record skips it.
- NATS is only the transport; the source service's events feed is the truth. Every message
  names the previous position of its tenant log: a consumer that sees a hole refills it from
  the feed first, and it never moves past a position it has not applied.
- Regularly (`reconcile_seconds`) it compares what it applied with the source's heads and
  takes from the feed whatever NATS did not bring (a lost tail, messages that ran out of
  deliveries); it also re-creates its stream and durable consumer if NATS lost them.
- An outage (PostgreSQL, NATS, the source's feed) is never the event's fault: the message is
  retried later, with a growing pause and without limit, and nothing is parked.
- An event a reaction cannot apply stalls that tenant only, at that event, with its reason
  (shared/resilience/stalls.py); it is retried until it applies, and other tenants go on.
- A message that is not an event of the source's log (undecodable, or its subject disagrees
  with its envelope) is parked with its reason: the real log loses nothing by it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.db.pool import DbConnection, tenant_transaction
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.envelope import EventEnvelope
from shared.messaging.streams import Subjects, ensure_stream
from shared.projections.dispatch import Dispatch, Reader
from shared.resilience.faults import SourceUnavailable, describe, is_outage
from shared.resilience.stalls import Stalls
from shared.resilience.supervisor import pause

log = logging.getLogger(__name__)


class EventSource(Protocol):
    """The source service's log as a consumer reads it (its events feed)."""

    async def read(self, tenant: str, after: int, until: int | None) -> list[EventEnvelope]:
        """Events of `tenant` with after < position (<= until; None: up to the head)."""

    async def heads(self) -> dict[str, int]:
        """The last position of every tenant log."""


class Reaction(Reader, Protocol):
    """A reader of another service's log (`shared.projections.dispatch`): it acts on the
    events it registers, in the consumer's transaction."""

    @property
    def tables(self) -> tuple[str, ...]:
        """Read-model tables this reaction owns (none for a process manager): what it
        writes is derived from the source's events alone, as a projection's rows are."""


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
        catalogue: EventCatalogue,
        feed: EventSource,
        backoff_seconds: Sequence[float] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
        reconcile_seconds: float = 5.0,
    ) -> None:
        self.name = name
        self.schema = schema
        self.source = source
        self.pool = pool
        self.js = js
        self.subjects = subjects
        self.reactions = list(reactions)
        # The source's events, as the source's catalogue reads them.
        self._dispatch = [Dispatch(reaction, catalogue) for reaction in self.reactions]
        self.feed = feed
        self.backoff = list(backoff_seconds)
        self.reconcile_seconds = reconcile_seconds
        self.applied = 0
        self.refilled = 0
        self.parked = 0
        # Events the source holds that this consumer has not applied (stalls included).
        self.lag = 0
        # Why the consumer is not making progress right now (an outage), for health.
        self.waiting_on: str | None = None
        self._warned_at = 0.0
        self.stalls = Stalls(pool, schema, f"consumer:{name}")
        self._stalled: dict[str, bool] = {}
        self._seen_at_last_check: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._decoder = msgspec.json.Decoder(EventEnvelope)

    @property
    def durable(self) -> str:
        return self.name

    @property
    def stream(self) -> str:
        return self.subjects.stream(self.source)

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """The stream and the durable consumer, created (again) as needed, and a pull
        subscription bound to it."""
        await ensure_stream(self.js, self.subjects, self.source)
        await self.js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=self.durable,
                filter_subject=self.subjects.of_service(self.source),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                # Unlimited: an outage must never use up a message's deliveries. Events a
                # reaction cannot apply are stalled by the consumer itself.
                max_deliver=-1,
                ack_wait=30,
            ),
        )
        return await self.js.pull_subscribe_bind(self.durable, self.stream)

    async def _still_subscribed(self) -> bool:
        try:
            await self.js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            return False
        return True

    async def run(self, stop: asyncio.Event, batch: int = 64) -> None:
        loop = asyncio.get_running_loop()
        sub: JetStreamContext.PullSubscription | None = None
        next_check = 0.0
        while not stop.is_set():
            if sub is None or loop.time() >= next_check:
                next_check = loop.time() + self.reconcile_seconds
                try:
                    if sub is None or not await self._still_subscribed():
                        if sub is not None:
                            log.warning("consumer %s: NATS lost it; creating it again", self.name)
                        sub = await self.subscribe()
                except Exception as exc:
                    await self._nats_unavailable(exc, stop)
                    # Check again right after the pause: a passing NATS timeout must not
                    # show as a wait until the next reconciliation.
                    next_check = 0.0
                    continue
                await self._reconcile_quietly()
            try:
                messages = await sub.fetch(batch, timeout=1.0)
            except NatsTimeoutError:
                continue
            except Exception as exc:
                await self._nats_unavailable(exc, stop)
                continue
            for msg in messages:
                await self.handle_message(msg)

    async def _nats_unavailable(self, exc: Exception, stop: asyncio.Event) -> None:
        if not is_outage(exc):
            raise exc
        self._wait_on(f"NATS: {describe(exc)}")
        await pause(stop, 1.0)

    def _wait_on(self, what: str) -> None:
        # One line when the wait starts and then every half minute, not one per retry.
        now = time.monotonic()
        if self.waiting_on is None or now - self._warned_at > 30:
            log.warning("consumer %s waits: %s", self.name, what)
            self._warned_at = now
        self.waiting_on = what

    async def handle_message(self, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered or 1
        try:
            await self._handle(msg)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._wait_on(describe(exc))
            delay = self.backoff[min(deliveries, len(self.backoff)) - 1]
            await _settle(msg.nak(delay=delay))
            return
        self.waiting_on = None
        await _settle(msg.ack())

    async def _handle(self, msg: Msg) -> None:
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
        await self.process(event)

    async def process(self, event: EventEnvelope) -> None:
        """Apply `event` in its place in the tenant's log: after every earlier event (taken
        from the source if NATS lost them), never after a stall of the tenant."""
        async with self._lock(event.tenant):
            if self._stalled.get(event.tenant) is not None:
                # The tenant waits at an earlier event; this one comes from the source once
                # that applies (so acknowledging it loses nothing).
                return
            last = await self.last_position(event.tenant)
            if event.position <= last:
                return
            pending = [event]
            if event.previous_position is not None and event.previous_position > last:
                # JetStream lost or reordered something: take the missing events from the
                # source of truth before applying this one.
                missing = await self._read_source(event.tenant, last, event.position - 1)
                self.refilled += len(missing)
                pending = [*missing, event]
            await self._apply_in_order(event.tenant, pending)

    async def catch_up(self, tenant: str) -> int:
        """Take from the source every event of `tenant` not applied yet (a lost tail, a
        stall's retry); returns how many were applied."""
        async with self._lock(tenant):
            last = await self.last_position(tenant)
            events = await self._read_source(tenant, last, None)
            before = self.applied
            await self._apply_in_order(tenant, events)
            self.refilled += self.applied - before
            return self.applied - before

    async def reconcile(self) -> None:
        """Compare with the source's heads: refill tenants that stopped short of the head
        (NATS lost their tail) and retry stalled tenants whose pause is over."""
        heads = await self._source_heads()
        self._stalled = await self.stalls.current()
        positions = await self.positions()
        self.lag = sum(max(0, head - positions.get(t, 0)) for t, head in heads.items())
        for tenant, head in heads.items():
            applied = positions.get(tenant, 0)
            waiting = self._stalled.get(tenant)
            behind = head > applied
            # Behind since the last check without progress: NATS is not bringing the rest.
            stuck = behind and self._seen_at_last_check.get(tenant) == applied
            if waiting is False or (waiting is None and stuck):
                await self.catch_up(tenant)
            self._seen_at_last_check[tenant] = applied
        self.waiting_on = None

    async def _reconcile_quietly(self) -> None:
        try:
            await self.reconcile()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._wait_on(describe(exc))

    async def _apply_in_order(self, tenant: str, events: Sequence[EventEnvelope]) -> None:
        was_stalled = tenant in self._stalled
        for event in events:
            try:
                await self.apply(event)
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.error(
                    "consumer %s stalled for tenant %s at %s: %s",
                    self.name,
                    tenant,
                    event.message_id,
                    describe(exc),
                )
                await self.stalls.record(tenant, event.position, event.message_id, describe(exc))
                self._stalled[tenant] = True
                return
        if was_stalled:
            log.info("consumer %s resumed for tenant %s", self.name, tenant)
            await self.stalls.clear(tenant)
            self._stalled.pop(tenant, None)

    async def _read_source(self, tenant: str, after: int, until: int | None) -> list[EventEnvelope]:
        try:
            return await self.feed.read(tenant, after, until)
        except Exception as exc:
            raise SourceUnavailable(
                f"events feed of {self.source} for tenant {tenant}: {describe(exc)}"
            ) from exc

    async def _source_heads(self) -> dict[str, int]:
        try:
            return await self.feed.heads()
        except Exception as exc:
            raise SourceUnavailable(f"heads of {self.source}: {describe(exc)}") from exc

    def _lock(self, tenant: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant, asyncio.Lock())

    async def last_position(self, tenant: str) -> int:
        value = await self.pool.fetchval(
            f"""SELECT position FROM {self.schema}.consumer_positions
                WHERE consumer = $1 AND source = $2 AND tenant_id = $3""",
            self.name,
            self.source,
            tenant,
        )
        return int(value or 0)

    async def positions(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            f"""SELECT tenant_id, position FROM {self.schema}.consumer_positions
                WHERE consumer = $1 AND source = $2""",
            self.name,
            self.source,
        )
        return {r["tenant_id"]: r["position"] for r in rows}

    async def apply(self, event: EventEnvelope) -> bool:
        """Apply once: returns False when this message was already processed."""
        async with tenant_transaction(self.pool, event.tenant) as conn:
            fresh = await conn.fetchval(
                f"""INSERT INTO {self.schema}.processed_messages (consumer, message_id)
                    VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true""",
                self.name,
                event.message_id,
            )
            if not fresh:
                return False
            for dispatch in self._dispatch:
                await dispatch.deliver(conn, event)
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

    async def _park_raw(self, msg: Msg, reason: str) -> None:
        message_id = (msg.headers or {}).get("Nats-Msg-Id", f"seq-{msg.metadata.sequence.stream}")
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"""INSERT INTO {self.schema}.parked_messages
                      (consumer, message_id, subject, payload, reason, deliveries)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (consumer, message_id) DO NOTHING""",
                self.name,
                message_id,
                msg.subject,
                msg.data,
                reason,
                msg.metadata.num_delivered or 1,
            )
        self.parked += 1


async def _settle(reply: Any) -> None:
    """Ack or nak; if NATS cannot take it now, the message comes again after its ack wait
    (and is then skipped by position or applied, never doubled)."""
    try:
        await reply
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("could not settle a message with NATS: %s", describe(exc))
