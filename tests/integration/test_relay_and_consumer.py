"""The outbox relay and the NATS consumer against real PostgreSQL and real NATS JetStream.

What a user relies on: every committed event reaches other services exactly once in effect,
whatever crashes between commit, publish and acknowledgement; a lost message is refilled
from the source log; a poison message is parked without stopping the ones after it.

This module runs on its own database and NATS prefix: a service started by another test in
the same session runs a background relay over its whole database, which would publish these
tests' events before the crashes below could be staged. Each test also gets its own stream
(own subject prefix), so "how many messages are in the stream" counts only its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import singledispatchmethod
from importlib import resources
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RawStreamMsg
from nats.js.errors import NotFoundError

from services.bootstrap import build_runtime
from services.registry.domain.institution import Institution
from shared.db.pool import DbConnection
from shared.db.roles import APP_ROLE
from shared.devstack.stack import DevStack
from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantLogs
from shared.messaging.consumer import EventConsumer
from shared.messaging.streams import Subjects, ensure_stream
from shared.outbox.relay import POSITION_HEADER, PREVIOUS_HEADER, Relay
from shared.resilience.stalls import request_retry
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import eventually, fresh_database, own_streams, register_institution_in

pytestmark = pytest.mark.timeout(120)

SOURCE = "registry"
# The consumers' bookkeeping and the observable effects live in a schema of the tests' own.
SCHEMA = "relaytest"


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def own_settings(backing: DevStack, settings: Settings) -> AsyncIterator[Settings]:
    """A database and NATS prefix of this module's own: the live services of other tests
    would otherwise publish these tenants' events before a crash could be staged."""
    async with (
        fresh_database(backing.database_url, "relay") as database_url,
        own_streams(backing.nats_url, "relay") as prefix,
    ):
        yield settings.replace(database_url=database_url, nats_prefix=prefix)


async def prepare_effects(database_url: str) -> None:
    """The consumers' bookkeeping and a table of observable effects, in the tests' schema."""
    owner = await asyncpg.connect(database_url)
    try:
        kernel = resources.files("shared.db").joinpath("sql", "kernel.sql").read_text("utf-8")
        await owner.execute(kernel.format(schema=SCHEMA))
        # No unique key on purpose: an effect applied twice must show up as two rows.
        await owner.execute(
            f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.effects (
                  seq bigserial PRIMARY KEY,
                  consumer text NOT NULL,
                  tenant_id text NOT NULL,
                  position bigint NOT NULL,
                  aggregate_id uuid NOT NULL
                )"""
        )
        await owner.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}")
        await owner.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {APP_ROLE}"
        )
        await owner.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {APP_ROLE}")
    finally:
        await owner.close()


@pytest.fixture(scope="module")
async def runtime(own_settings: Settings) -> AsyncIterator[ServiceRuntime]:
    rt = build_runtime(SOURCE, own_settings, run_background=False)
    await rt.start()
    try:
        assert own_settings.database_url is not None
        await prepare_effects(own_settings.database_url)
        yield rt
    finally:
        await rt.stop()


@dataclass
class LogFeed:
    """The source of truth a consumer refills from: the tenant logs themselves (what the
    source's events feed serves), and a switch to make it unreachable."""

    db: asyncpg.Pool[Any]
    logs: TenantLogs
    down: bool = False

    async def read(self, tenant: str, after: int, until: int | None) -> list[EventEnvelope]:
        if self.down:
            raise httpx.ConnectError("All connection attempts failed")
        async with self.db.acquire() as conn:
            return await self.logs.read(conn, tenant, after=after, limit=10_000, until=until)

    async def heads(self) -> dict[str, int]:
        if self.down:
            raise httpx.ConnectError("All connection attempts failed")
        async with self.db.acquire() as conn:
            return await self.logs.heads(conn)


@dataclass
class Lane:
    """One test's isolated slice: a tenant, a stream of its own and a relay over that tenant."""

    runtime: ServiceRuntime
    tenant: str
    subjects: Subjects
    logs: TenantLogs

    @property
    def js(self) -> JetStreamContext:
        return self.runtime.js

    @property
    def stream(self) -> str:
        return self.subjects.stream(SOURCE)

    def relay(self, cls: type[Relay] = Relay, batch_size: int = 256) -> Relay:
        return cls(
            schema=SOURCE,
            pool=self.runtime.db,
            logs=self.logs,
            js=self.js,
            subjects=self.subjects,
            batch_size=batch_size,
        )

    @property
    def feed(self) -> LogFeed:
        return LogFeed(self.runtime.db, self.logs)

    def consumer(
        self,
        name: str,
        reaction: RecordEffect,
        *,
        feed: LogFeed | None = None,
        backoff_seconds: tuple[float, ...] = (0.2, 0.5),
        reconcile_seconds: float = 5.0,
    ) -> EventConsumer:
        return EventConsumer(
            name=name,
            schema=SCHEMA,
            source=SOURCE,
            pool=self.runtime.db,
            js=self.js,
            subjects=self.subjects,
            reactions=[reaction],
            catalogue=self.runtime.catalogue,
            feed=feed or self.feed,
            backoff_seconds=backoff_seconds,
            reconcile_seconds=reconcile_seconds,
        )

    async def register(self, count: int, tenant: str | None = None) -> list[UUID]:
        """Commit `count` registrations in this tenant; returns the institutions' ids."""
        return await register(self.runtime, tenant or self.tenant, count)

    async def log(self, tenant: str | None = None) -> list[EventEnvelope]:
        async with self.runtime.db.acquire() as conn:
            return await self.logs.read(conn, tenant or self.tenant, after=0, limit=10_000)

    async def stream_messages(self) -> list[RawStreamMsg]:
        """Every message the stream holds, in stream order (deleted ones are skipped)."""
        info = await self.js.stream_info(self.stream)
        messages: list[RawStreamMsg] = []
        if info.state.messages == 0:
            return messages
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                messages.append(await self.js.get_msg(self.stream, seq))
            except NotFoundError:
                continue
        return messages


async def register(runtime: ServiceRuntime, tenant: str, count: int) -> list[UUID]:
    """Commit `count` registrations in `tenant`; returns the institutions' ids."""
    return [
        await register_institution_in(
            runtime, tenant, f"LKSA Muhammadiyah {tenant}-{i}", actor="relay-test"
        )
        for i in range(count)
    ]


@pytest.fixture
def make_lane(runtime: ServiceRuntime) -> Callable[..., Awaitable[Lane]]:
    async def make(tenant: str, *others: str) -> Lane:
        subjects = Subjects(f"{runtime.settings.nats_prefix}t{tenant}")
        await ensure_stream(runtime.js, subjects, SOURCE)
        return Lane(
            runtime, tenant, subjects, TenantLogs(SOURCE, runtime.catalogue, [tenant, *others])
        )

    return make


@dataclass
class RecordEffect:
    """A reaction whose effect is a row per applied event; optionally fails on one event."""

    consumer: str
    poison: UUID | None = None
    name: str = "record-effect"
    tables: tuple[str, ...] = (f"{SCHEMA}.effects",)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Other events have no effect."""

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {SCHEMA}.effects (consumer, tenant_id, position, aggregate_id)
                VALUES ($1, $2, $3, $4)""",
            self.consumer,
            envelope.tenant,
            envelope.position,
            event.originator_id,
        )
        if event.originator_id == self.poison:
            # After the insert, so only a rolled-back transaction keeps the effect out.
            raise ValueError(f"cannot handle institution {event.originator_id}")


async def effects(runtime: ServiceRuntime, consumer: str, tenant: str | None = None) -> list[int]:
    """Positions whose effect was applied by `consumer` (in `tenant`), in the order they were
    applied."""
    rows = await runtime.db.fetch(
        f"""SELECT position FROM {SCHEMA}.effects
            WHERE consumer = $1 AND ($2::text IS NULL OR tenant_id = $2) ORDER BY seq""",
        consumer,
        tenant,
    )
    return [r["position"] for r in rows]


async def consume_until(
    lane: Lane,
    consumer: EventConsumer,
    done: Callable[[], Awaitable[bool]],
    within: float = 15,
    batch: int = 16,
) -> None:
    """Run the consumer's real loop until `done`, and until NATS has nothing left for it."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, batch=batch))
    try:

        async def settled() -> bool:
            if not await done():
                return False
            info = await lane.js.consumer_info(lane.stream, consumer.durable)
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)

        await eventually(settled, within=within)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 5)
        except TimeoutError:
            task.cancel()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise AssertionError("consumer loop crashed") from task.exception()


def header(msg: RawStreamMsg, name: str) -> str:
    headers: dict[str, Any] = msg.headers or {}
    return str(headers[name])


# --- tests ----------------------------------------------------------------------------------


class CrashAfterAck(Relay):
    """JetStream has acknowledged the batch, then the process dies before storing its
    position."""

    crashed = False

    async def _store_positions(self, positions: dict[str, int]) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("relay crashed after JetStream acked the batch")
        await super()._store_positions(positions)


async def test_crash_after_ack_republishes_without_duplicates(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    lane = await make_lane("61")
    await lane.register(25)
    log = await lane.log()
    positions = [e.position for e in log]
    assert len(positions) == 25

    crashing = lane.relay(CrashAfterAck)
    with pytest.raises(RuntimeError, match="crashed after JetStream acked"):
        await crashing.publish_pending()
    assert len(await lane.stream_messages()) == 25
    assert "61" not in await crashing.positions()

    # The restarted relay starts again from the stored (old) position and republishes all.
    restarted = lane.relay()
    assert await restarted.publish_pending() == 25
    messages = await lane.stream_messages()
    assert sorted(int(header(m, POSITION_HEADER)) for m in messages) == positions
    assert sorted(header(m, "Nats-Msg-Id") for m in messages) == sorted(e.message_id for e in log)
    assert (await restarted.positions())["61"] == positions[-1]
    assert await restarted.publish_pending() == 0

    name = "relaytest-crash-after-ack"
    consumer = lane.consumer(name, RecordEffect(name))

    async def all_applied() -> bool:
        return len(await effects(runtime, name)) >= 25

    await consume_until(lane, consumer, all_applied)
    assert await effects(runtime, name) == positions
    assert await consumer.last_position("61") == positions[-1]


class CrashMidBatch(Relay):
    """Dies after JetStream acknowledged only part of a batch (the rest never left)."""

    async def _publish(self, batch: list[EventEnvelope]) -> None:
        await super()._publish(batch[:4])
        raise ConnectionError("relay killed while publishing")


async def test_crash_before_publish_loses_nothing(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    lane = await make_lane("62")
    await lane.register(10)
    log = await lane.log()
    positions = [e.position for e in log]

    # Committed, and the relay died before publishing anything: nothing is in NATS yet.
    assert await lane.stream_messages() == []
    assert "62" not in await lane.relay().positions()

    with pytest.raises(ConnectionError):
        await lane.relay(CrashMidBatch).publish_pending()
    assert len(await lane.stream_messages()) == 4
    assert "62" not in await lane.relay().positions()

    assert await lane.relay().publish_pending() == 10
    messages = await lane.stream_messages()
    assert [int(header(m, POSITION_HEADER)) for m in messages] == positions
    assert len({header(m, "Nats-Msg-Id") for m in messages}) == 10

    name = "relaytest-crash-before-publish"
    consumer = lane.consumer(name, RecordEffect(name))

    async def all_applied() -> bool:
        return len(await effects(runtime, name)) >= 10

    await consume_until(lane, consumer, all_applied)
    assert await effects(runtime, name) == positions


async def test_redelivered_message_has_its_effect_once(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    lane = await make_lane("65")
    await lane.register(2)
    await lane.relay().publish_pending()
    first, second = await lane.log()

    name = "relaytest-redelivery"
    consumer = lane.consumer(name, RecordEffect(name))
    assert await consumer.apply(first) is True
    assert await consumer.apply(first) is False
    await consumer.process(first)
    assert await effects(runtime, name) == [first.position]

    # A real redelivery: the effect committed but the ack never reached NATS (here a nak).
    sub = await lane.js.pull_subscribe(
        lane.subjects.of_tenant(SOURCE, "65"),
        durable=name,
        stream=lane.stream,
        config=ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=5,
            ack_wait=30,
        ),
    )
    try:
        delivered = await sub.fetch(2, timeout=5)
        assert [int(m.header[POSITION_HEADER]) for m in delivered if m.header] == [
            first.position,
            second.position,
        ]
        await consumer.process(msgspec.json.decode(delivered[1].data, type=EventEnvelope))
        for msg in delivered:
            await msg.nak()
        again = await sub.fetch(2, timeout=5)
        assert [m.metadata.num_delivered for m in again] == [2, 2]
        for msg in again:
            await consumer.handle_message(msg)
    finally:
        await sub.unsubscribe()

    assert await effects(runtime, name) == [first.position, second.position]

    async def acknowledged() -> bool:
        # Acks are fire-and-forget publishes: the server counts them a moment later.
        info = await lane.js.consumer_info(lane.stream, name)
        return bool(info.num_ack_pending == 0 and info.num_redelivered == 0)

    await eventually(acknowledged, within=5)
    assert consumer.applied == 2


async def test_a_pulls_events_of_every_tenant_apply_in_one_transaction(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    lane = await make_lane("61", "62")
    await lane.register(3)
    await lane.register(2, tenant="62")
    await lane.relay().publish_pending()
    log, other = await lane.log(), await lane.log("62")
    name = "relaytest-pull"
    consumer = lane.consumer(name, RecordEffect(name))

    async def all_applied() -> bool:
        return await effects(runtime, name, "61") == [e.position for e in log] and await effects(
            runtime, name, "62"
        ) == [e.position for e in other]

    # Everything is in the stream before the first pull, and one pull can take it all.
    await consume_until(lane, consumer, all_applied, batch=200)
    # One transaction wrote both tenants' effects (the logs may hold earlier tests' events,
    # which JetStream may hand over in more than one pull).
    shared = await runtime.db.fetchval(
        f"""SELECT count(*) FROM (SELECT xmin::text FROM {SCHEMA}.effects WHERE consumer = $1
            GROUP BY 1 HAVING count(DISTINCT tenant_id) = 2) AS t""",
        name,
    )
    assert shared >= 1
    assert consumer.applied == len(log) + len(other)


async def test_lost_message_is_refilled_from_the_log_in_order(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    lane = await make_lane("64")
    await lane.register(6)
    await lane.relay().publish_pending()
    positions = [e.position for e in await lane.log()]

    messages = await lane.stream_messages()
    lost = messages[2]
    assert lost.seq is not None
    assert await lane.js.delete_msg(lane.stream, lost.seq)
    assert len(await lane.stream_messages()) == 5

    name = "relaytest-hole"
    consumer = lane.consumer(name, RecordEffect(name))

    async def all_applied() -> bool:
        return len(await effects(runtime, name)) >= 6

    await consume_until(lane, consumer, all_applied)
    assert await effects(runtime, name) == positions
    assert consumer.refilled == 1
    assert consumer.applied == 6


async def test_messages_carry_ids_positions_and_chain_the_tenant_log(
    make_lane: Callable[..., Awaitable[Lane]],
) -> None:
    lane = await make_lane("71")
    await lane.register(5)
    # Small batches: the chain must hold across batch boundaries, not only within one.
    assert await lane.relay(batch_size=2).publish_pending() == 5
    log = await lane.log()

    messages = await lane.stream_messages()
    assert len(messages) == 5
    envelopes = [msgspec.json.decode(m.data or b"", type=EventEnvelope) for m in messages]
    assert [e.position for e in envelopes] == [e.position for e in log]
    previous: int | None = None
    for msg, envelope in zip(messages, envelopes, strict=True):
        assert msg.subject == f"{lane.subjects.prefix}.registry.71.institution.registered"
        assert header(msg, "Nats-Msg-Id") == f"registry.71.{envelope.position}"
        assert header(msg, POSITION_HEADER) == str(envelope.position)
        assert header(msg, PREVIOUS_HEADER) == ("" if previous is None else str(previous))
        assert envelope.previous_position == previous
        assert (envelope.service, envelope.tenant, envelope.event) == (SOURCE, "71", "Registered")
        previous = envelope.position


async def test_message_redirected_to_another_subject_is_parked_not_applied(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    """A real event of one province re-published under another province's subject (what a
    push consumer's deliver subject pointing into the stream would do) is never applied."""
    lane = await make_lane("72")
    await lane.register(1)
    (event,) = await lane.log()
    forged_subject = lane.subjects.of(msgspec.structs.replace(event, tenant="31"))
    await lane.js.publish(forged_subject, msgspec.json.encode(event))
    consumer = lane.consumer("c-redirect", RecordEffect("c-redirect"))

    async def parked() -> bool:
        rows = await runtime.db.fetch(
            f"SELECT reason FROM {SCHEMA}.parked_messages WHERE consumer = $1", "c-redirect"
        )
        return bool(rows) and "does not match its envelope" in rows[0]["reason"]

    await consume_until(lane, consumer, parked)
    assert await effects(runtime, "c-redirect") == []


async def parked_messages(runtime: ServiceRuntime, consumer: str) -> int:
    count = await runtime.db.fetchval(
        f"SELECT count(*) FROM {SCHEMA}.parked_messages WHERE consumer = $1", consumer
    )
    return int(count)


async def test_event_a_reaction_cannot_apply_stalls_its_tenant_only_until_it_applies(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    """Never past an event not applied: the failing event stops its tenant there (other
    tenants go on), says why, and once the fault is fixed everything applies in order."""
    lane = await make_lane("63", "75")
    ids = await lane.register(4)
    await lane.register(3, tenant="75")
    await lane.relay().publish_pending()
    log, other = await lane.log(), await lane.log("75")
    name = "relaytest-stall"
    reaction = RecordEffect(name, poison=ids[1])
    consumer = lane.consumer(name, reaction, reconcile_seconds=0.3)

    async def other_tenant_done_and_stalled() -> bool:
        return (
            await effects(runtime, name, "75") == [e.position for e in other]
            and "63" in await consumer.stalls.all()
        )

    await consume_until(lane, consumer, other_tenant_done_and_stalled)
    assert await effects(runtime, name, "63") == [log[0].position]
    assert await consumer.last_position("63") == log[0].position
    stall = (await consumer.stalls.all())["63"]
    assert (stall.position, stall.message_id) == (log[1].position, log[1].message_id)
    assert stall.reason == f"ValueError: cannot handle institution {ids[1]}"
    assert await parked_messages(runtime, name) == 0
    await consumer.reconcile()
    assert consumer.lag == len(log) - 1

    # The fix is deployed: the stall is retried and the tenant resumes where it stopped.
    reaction.poison = None
    owner = await asyncpg.connect(runtime.database_url)
    try:
        assert await request_retry(owner, SCHEMA, "63") == 1
    finally:
        await owner.close()

    async def all_applied() -> bool:
        return await effects(runtime, name, "63") == [e.position for e in log]

    await consume_until(lane, consumer, all_applied)
    assert await consumer.stalls.all() == {}
    assert await effects(runtime, name, "75") == [e.position for e in other]


async def test_hole_that_cannot_be_refilled_yet_waits_and_never_skips(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    """The source's feed is unreachable when a hole shows: the consumer waits (visibly,
    without parking or using up deliveries) and fills it when the source returns."""
    lane = await make_lane("76")
    await lane.register(4)
    await lane.relay().publish_pending()
    log = await lane.log()
    lost = (await lane.stream_messages())[1]
    assert lost.seq is not None
    await lane.js.delete_msg(lane.stream, lost.seq)

    name = "relaytest-hole-waits"
    feed = lane.feed
    feed.down = True
    consumer = lane.consumer(name, RecordEffect(name), feed=feed, reconcile_seconds=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, batch=16))
    try:

        async def waiting() -> bool:
            if consumer.waiting_on is None:
                return False
            info = await lane.js.consumer_info(lane.stream, name)
            # Redelivered while it waits, and never parked (its deliveries are unlimited).
            return bool(info.num_redelivered)

        await eventually(waiting)
        await asyncio.sleep(2.0)
        assert await effects(runtime, name) == [log[0].position]
        assert await consumer.last_position("76") == log[0].position
        assert await parked_messages(runtime, name) == 0
        assert "of registry" in (consumer.waiting_on or "")

        feed.down = False

        async def filled() -> bool:
            return await effects(runtime, name) == [e.position for e in log]

        await eventually(filled, within=20)
        assert consumer.waiting_on is None
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_lost_tail_is_found_by_comparing_with_the_source_head(
    make_lane: Callable[..., Awaitable[Lane]], runtime: ServiceRuntime
) -> None:
    """The last messages of a tenant vanish from the stream and no later event comes to
    reveal it: the consumer compares with the source's head and takes the rest from it."""
    lane = await make_lane("81")
    await lane.register(5)
    await lane.relay().publish_pending()
    log = await lane.log()
    for msg in (await lane.stream_messages())[3:]:
        assert msg.seq is not None
        await lane.js.delete_msg(lane.stream, msg.seq)

    name = "relaytest-tail"
    consumer = lane.consumer(name, RecordEffect(name), reconcile_seconds=0.3)

    async def all_applied() -> bool:
        return await effects(runtime, name) == [e.position for e in log]

    await consume_until(lane, consumer, all_applied)
    assert consumer.refilled == 2
    await consumer.reconcile()
    assert consumer.lag == 0


class PublishFails(Relay):
    async def _publish(self, batch: list[EventEnvelope]) -> None:
        raise ConnectionError("NATS unreachable")


async def test_relay_lag_counts_what_it_failed_to_publish(
    make_lane: Callable[..., Awaitable[Lane]],
) -> None:
    lane = await make_lane("82")
    await lane.register(3)
    relay = lane.relay(PublishFails)
    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    assert relay.lag == 3
    working = lane.relay()
    assert await working.publish_pending() == 3
    assert working.lag == 3  # measured before this pass published
    await working.publish_pending()
    assert working.lag == 0
