"""Durable pull consumer of another service's events.

- The effect and the processed-message record commit in one transaction; the message is
  acknowledged only after that commit, so a crash redelivers and the record skips it.
- A pull's messages apply together: one transaction for all their tenants (one
  processed-messages insert and one position per tenant), so a commit and its round trips
  are paid per pull, not per message. If one event fails there, the pull rolls back and its
  tenants apply again each on its own, event by event, so that event stalls its tenant only,
  at that event, and everything before it and every other tenant still applies.
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
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, NamedTuple, Protocol

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
        # NATS requests failed in a row: one is a slow reply on a busy machine (retried at
        # once), not an outage to show in health; the second in a row is.
        self._nats_failures = 0
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
                    self._nats_failures = 0
                except Exception as exc:
                    await self._nats_unavailable(exc, stop)
                    # Check again at once (after the pause of a second failure): a passing
                    # NATS timeout must not show as a wait until the next reconciliation.
                    next_check = 0.0
                    continue
                await self._reconcile_quietly()
            try:
                messages = await sub.fetch(batch, timeout=1.0)
            except NatsTimeoutError:
                # NATS answered: nothing to fetch.
                self._nats_failures = 0
                continue
            except Exception as exc:
                await self._nats_unavailable(exc, stop)
                continue
            self._nats_failures = 0
            await self.handle_messages(messages)

    async def _nats_unavailable(self, exc: Exception, stop: asyncio.Event) -> None:
        if not is_outage(exc):
            raise exc
        self._nats_failures += 1
        if self._nats_failures == 1:
            log.debug("consumer %s: NATS request failed once, retrying", self.name, exc_info=True)
            return
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
        await self.handle_messages([msg])

    async def handle_messages(self, messages: Sequence[Msg]) -> None:
        """Apply a pull's events and settle each message: acknowledged once applied (or
        parked, or skipped as applied already), retried later when an outage stopped it."""
        by_tenant: dict[str, list[tuple[Msg, EventEnvelope]]] = {}
        for msg in messages:
            try:
                event = await self._event_of(msg)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._wait_on(describe(exc))
                await _settle(msg.nak(delay=_delay(self.backoff, msg)))
                continue
            if event is None:
                await _settle(msg.ack())
            else:
                by_tenant.setdefault(event.tenant, []).append((msg, event))
        outages = await self._process_tenants(
            {tenant: [event for _, event in pulled] for tenant, pulled in by_tenant.items()}
        )
        if not outages:
            self.waiting_on = None
        for tenant, pulled in by_tenant.items():
            outage = outages.get(tenant)
            if outage is not None:
                self._wait_on(describe(outage.reason))
            for msg, event in pulled:
                if outage is None or event.position < outage.from_position:
                    await _settle(msg.ack())
                else:
                    await _settle(msg.nak(delay=_delay(self.backoff, msg)))

    async def _event_of(self, msg: Msg) -> EventEnvelope | None:
        """The event a message carries; None when it is none of the source's (parked)."""
        try:
            event = self._decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            await self._park_raw(msg, f"undecodable message: {exc}")
            return None
        if msg.subject != self.subjects.of(event) or event.service != self.source:
            # Only the relay publishes here; a message whose subject disagrees with its own
            # envelope was redirected by someone else (e.g. a push consumer's deliver subject
            # pointing into the stream) and must never be applied.
            await self._park_raw(msg, f"subject {msg.subject} does not match its envelope")
            return None
        return event

    async def process(self, event: EventEnvelope) -> None:
        """Apply `event` in its place in the tenant's log: after every earlier event (taken
        from the source if NATS lost them), never after a stall of the tenant."""
        outages = await self._process_tenants({event.tenant: [event]})
        if outage := outages.get(event.tenant):
            raise outage.reason

    async def _process_tenants(
        self, events: Mapping[str, Sequence[EventEnvelope]]
    ) -> dict[str, _Outage]:
        """Apply each tenant's events in their places (see `process`), all tenants in one
        transaction when they can; the outages that stopped a tenant, by tenant."""
        outages: dict[str, _Outage] = {}
        async with AsyncExitStack() as locks:
            for tenant in sorted(events):
                await locks.enter_async_context(self._lock(tenant))
            try:
                positions = await self.positions()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                return dict.fromkeys(events, _Outage(exc))
            pending: dict[str, list[EventEnvelope]] = {}
            for tenant, received in events.items():
                if self._stalled.get(tenant) is not None:
                    # The tenant waits at an earlier event; these come from the source once
                    # that applies (so acknowledging them loses nothing).
                    continue
                in_order, outage = await self._in_order(tenant, positions.get(tenant, 0), received)
                if in_order:
                    pending[tenant] = in_order
                if outage is not None:
                    outages[tenant] = outage
            try:
                await self._apply_together(pending)
            except Exception as exc:
                if is_outage(exc):
                    return {**outages, **dict.fromkeys(pending, _Outage(exc))}
                # One event cannot apply: each tenant on its own, event by event, so that
                # event stalls its tenant only.
                for tenant, in_order in pending.items():
                    try:
                        await self._apply_in_order(tenant, in_order)
                    except Exception as exc:
                        if not is_outage(exc):
                            raise
                        outages[tenant] = _Outage(exc)
        return outages

    async def _in_order(
        self, tenant: str, last: int, received: Sequence[EventEnvelope]
    ) -> tuple[list[EventEnvelope], _Outage | None]:
        """The events after `last` to apply, in log order, with any the messages skipped
        (JetStream lost or reordered them) taken from the source of truth; if the source
        cannot be read, those before the hole and the outage that stops the rest."""
        in_order: list[EventEnvelope] = []
        for event in sorted({e.position: e for e in received}.values(), key=_position):
            if event.position <= last:
                continue
            if event.previous_position is not None and event.previous_position > last:
                try:
                    missing = await self._read_source(tenant, last, event.position - 1)
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    return in_order, _Outage(exc, event.position)
                self.refilled += len(missing)
                in_order.extend(missing)
            in_order.append(event)
            last = event.position
        return in_order, None

    async def _apply_together(self, events: Mapping[str, Sequence[EventEnvelope]]) -> None:
        """Every tenant's events in one transaction, each tenant's rows under its own
        setting; the events processed already are skipped."""
        if not events:
            return
        applied = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for tenant, in_order in events.items():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
                fresh = {
                    row[0]
                    for row in await conn.fetch(
                        f"""INSERT INTO {self.schema}.processed_messages (consumer, message_id)
                            SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING
                            RETURNING message_id""",
                        self.name,
                        [e.message_id for e in in_order],
                    )
                }
                for event in in_order:
                    if event.message_id in fresh:
                        for dispatch in self._dispatch:
                            await dispatch.deliver(conn, event)
                await self._advance(conn, tenant, in_order[-1].position)
                applied += len(fresh)
        self.applied += applied

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


class _Outage(NamedTuple):
    """What stopped a tenant's events in a pull, and from which position on."""

    reason: Exception
    # Events before it applied (0: none of the pull's did).
    from_position: int = 0


def _delay(backoff: Sequence[float], msg: Msg) -> float:
    """The pause before a message stopped by an outage comes again, growing with its
    deliveries."""
    deliveries = msg.metadata.num_delivered or 1
    return backoff[min(deliveries, len(backoff)) - 1]


def _position(event: EventEnvelope) -> int:
    return event.position


async def _settle(reply: Any) -> None:
    """Ack or nak; if NATS cannot take it now, the message comes again after its ack wait
    (and is then skipped by position or applied, never doubled)."""
    try:
        await reply
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("could not settle a message with NATS: %s", describe(exc))
