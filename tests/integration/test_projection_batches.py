"""The projection runner reads a tenant's new events once for all of a service's projections
that are at the same position, applies them in one transaction and moves them on together;
an event one of them cannot apply stalls that one only, and one that is behind catches up
on its own and then joins the others.

Tenant 94 belongs to this module; the probe projections have names and a table of their own,
removed afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import singledispatchmethod
from typing import Any

import asyncpg
import pytest

from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import Institution
from shared.db.pool import DbConnection
from shared.db.roles import APP_ROLE
from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantLogs
from shared.projections.runner import Projection, ProjectionRunner
from shared.resilience.stalls import request_retry
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import accepted, register_institution_in, run_command, running

pytestmark = pytest.mark.timeout(120)

TENANT = "94"


class CountingLogs(TenantLogs):
    """The registry's logs, counting the batches of events read from them."""

    def __init__(self, logs: TenantLogs) -> None:
        super().__init__(logs.service, logs.catalogue, logs.tenants)
        self.reads = 0

    async def read_in_transaction(
        self, conn: DbConnection, tenant: str, *, after: int, limit: int, until: int | None = None
    ) -> list[EventEnvelope]:
        self.reads += 1
        return await super().read_in_transaction(
            conn, tenant, after=after, limit=limit, until=until
        )


class Probe:
    """Writes a row per event it reads (name, tenant, position); fails at one position, after
    writing its row, when asked to."""

    tables = ("probe_batches.seen",)

    def __init__(self, name: str, fail_at: int | None = None) -> None:
        self.name = f"probe-batches-{name}"
        self.fail_at = fail_at

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Nothing but the registry's events is in its log."""

    @on.register
    async def _(
        self, event: Institution.Event, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            "INSERT INTO probe_batches.seen (projection, tenant_id, position) VALUES ($1, $2, $3)",
            self.name,
            envelope.tenant,
            envelope.position,
        )
        await self.after_row(conn, envelope)

    async def after_row(self, conn: DbConnection, envelope: EventEnvelope) -> None:
        if envelope.position == self.fail_at:
            raise RuntimeError(f"{self.name} cannot apply this")


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("registry", settings) as runtime:
        yield runtime


@pytest.fixture
async def probes(owner: asyncpg.Connection[Any]) -> AsyncIterator[None]:
    await owner.execute(
        f"""DROP SCHEMA IF EXISTS probe_batches CASCADE;
            CREATE SCHEMA probe_batches;
            CREATE TABLE probe_batches.seen (
                projection text NOT NULL, tenant_id text NOT NULL, position bigint NOT NULL);
            GRANT USAGE ON SCHEMA probe_batches TO {APP_ROLE};
            GRANT SELECT, INSERT ON probe_batches.seen TO {APP_ROLE};"""
    )
    try:
        yield
    finally:
        await owner.execute(
            "DELETE FROM registry.projection_positions WHERE projection LIKE 'probe-batches-%'"
        )
        await owner.execute("DELETE FROM registry.stalls WHERE follower LIKE '%probe-batches-%'")
        await owner.execute("DROP SCHEMA probe_batches CASCADE")


def runner(
    runtime: ServiceRuntime, logs: TenantLogs, projections: list[Projection], batch_size: int = 3
) -> ProjectionRunner:
    return ProjectionRunner(
        schema="registry",
        pool=runtime.db,
        logs=logs,
        projections=projections,
        batch_size=batch_size,
        keys=runtime.keys,
    )


async def seen(owner: asyncpg.Connection[Any], probe: Probe) -> list[int]:
    rows = await owner.fetch(
        """SELECT position FROM probe_batches.seen WHERE projection = $1 AND tenant_id = $2
           ORDER BY position""",
        probe.name,
        TENANT,
    )
    return [r["position"] for r in rows]


async def position(owner: asyncpg.Connection[Any], probe: Probe) -> int | None:
    value: int | None = await owner.fetchval(
        """SELECT position FROM registry.projection_positions
           WHERE projection = $1 AND tenant_id = $2""",
        probe.name,
        TENANT,
    )
    return value


async def log_of(runtime: ServiceRuntime) -> list[int]:
    async with runtime.db.acquire() as conn:
        return [e.position for e in await runtime.logs.read(conn, TENANT, after=0, limit=10_000)]


async def add_events(runtime: ServiceRuntime, count: int) -> None:
    """`count` events in the tenant's log: a registration and renames of it."""
    institution = await register_institution_in(runtime, TENANT, "Panti Asuhan Uji Batch")
    for i in range(count - 1):
        accepted(
            await run_command(
                runtime,
                TENANT,
                RenameInstitution(institution_id=institution, name=f"Panti Asuhan Batch {i}"),
            )
        )


async def test_projections_at_one_position_read_each_batch_once_and_apply_what_each_alone_would(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    await add_events(registry, 7)
    log = await log_of(registry)
    together = [Probe("a"), Probe("b"), Probe("c")]
    logs = CountingLogs(registry.logs)

    applied = await runner(registry, logs, list(together)).catch_up([TENANT])

    # In batches of 3, the last one short: one read per batch for the three of them.
    assert logs.reads == len(log) // 3 + 1
    assert applied == 3 * len(log)
    alone = Probe("alone")
    await runner(registry, registry.logs, [alone]).catch_up([TENANT])
    assert await seen(owner, alone) == log
    for probe in together:
        assert await seen(owner, probe) == log, probe.name
        assert await position(owner, probe) == log[-1]

    # Nothing new: one look for all of them, nothing applied twice.
    logs.reads = 0
    assert await runner(registry, logs, list(together)).catch_up([TENANT]) == 0
    assert logs.reads == 1
    assert await seen(owner, together[0]) == log


async def test_an_event_one_projection_cannot_apply_stalls_that_projection_only(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    await add_events(registry, 4)
    log = await log_of(registry)
    bad = log[-2]
    good, failing, other = Probe("good"), Probe("failing", fail_at=bad), Probe("other")
    logs = CountingLogs(registry.logs)
    live = runner(registry, logs, [good, failing, other])

    await live.catch_up([TENANT])

    for probe in (good, other):
        assert await seen(owner, probe) == log, probe.name
        assert await position(owner, probe) == log[-1]
    # Everything before the bad event is applied, once; its row rolled back with it.
    assert await seen(owner, failing) == log[:-2]
    assert await position(owner, failing) == log[-3]
    stall = (await live.stalls[failing.name].all())[TENANT]
    assert stall.position == bad
    assert stall.reason == f"RuntimeError: {failing.name} cannot apply this"
    assert await live.stalls[good.name].all() == {}
    assert await live.stalls[other.name].all() == {}

    # The others go on together past it, the stalled one waits.
    await add_events(registry, 1)
    log = await log_of(registry)
    logs.reads = 0
    await live.catch_up([TENANT])
    assert logs.reads == 1
    assert await seen(owner, good) == log
    assert await seen(owner, other) == log
    assert await seen(owner, failing) == log[:-3]

    # Fixed and retried: it catches up alone, its stall cleared, each event once.
    assert await request_retry(owner, "registry", TENANT) == 1
    failing.fail_at = None
    await live.catch_up()
    assert await seen(owner, failing) == log
    assert await position(owner, failing) == log[-1]
    assert await live.stalls[failing.name].all() == {}
    assert live.lag[failing.name] == 0


async def test_a_write_postgresql_refuses_stalls_the_projection_at_the_event_it_came_from(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    # The writes of a batch are held and sent at its end (`shared.projections.writes`): the
    # refusal comes after every event of the batch was handed over, yet the stall must name
    # the event whose row PostgreSQL refused, with everything before it applied.
    await add_events(registry, 5)
    log = await log_of(registry)
    bad = log[-3]
    refused, good = Probe("refused"), Probe("good")
    await owner.execute(
        f"""ALTER TABLE probe_batches.seen ADD CONSTRAINT refuse_one
            CHECK (projection <> '{refused.name}' OR position <> {bad})"""
    )
    live = runner(registry, CountingLogs(registry.logs), [good, refused], batch_size=4)

    await live.catch_up([TENANT])

    assert await seen(owner, good) == log
    assert await seen(owner, refused) == log[: log.index(bad)]
    assert await position(owner, refused) == log[log.index(bad) - 1]
    stall = (await live.stalls[refused.name].all())[TENANT]
    assert stall.position == bad
    assert stall.reason.startswith("CheckViolationError")


async def test_a_projection_that_is_behind_catches_up_alone_and_then_joins_the_others(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    await add_events(registry, 3)
    ahead = Probe("ahead")
    await runner(registry, registry.logs, [ahead]).catch_up([TENANT])
    await add_events(registry, 2)
    log = await log_of(registry)
    new = Probe("new")
    logs = CountingLogs(registry.logs)
    both = runner(registry, logs, [ahead, new])

    await both.catch_up([TENANT])

    # `ahead` read the two new events once; `new` the whole log on its own, once each.
    assert await seen(owner, ahead) == log
    assert await seen(owner, new) == log
    assert await position(owner, new) == await position(owner, ahead) == log[-1]
    # They are at one position now: the next event is read once for both.
    await add_events(registry, 1)
    logs.reads = 0
    await both.catch_up([TENANT])
    assert logs.reads == 1
    log = await log_of(registry)
    assert await seen(owner, ahead) == log
    assert await seen(owner, new) == log


async def test_replicas_sharing_batches_apply_each_event_once_per_projection(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    """Three instances of a service (scaled out) run the same projections at once: each
    batch locks them in one order, so the replicas neither deadlock nor apply twice."""
    await add_events(registry, 20)
    first, second = Probe("first"), Probe("second")
    # One replica knows `first` from before, at a position the others do not know of.
    await runner(registry, registry.logs, [first]).catch_up([TENANT])
    await add_events(registry, 10)
    log = await log_of(registry)
    replicas = [runner(registry, registry.logs, [first, second], batch_size=4) for _ in range(3)]
    await asyncio.gather(*(r.catch_up([TENANT]) for r in replicas))

    for probe in (first, second):
        assert await seen(owner, probe) == log, probe.name
        assert await position(owner, probe) == log[-1]


async def test_a_projection_reset_behind_the_runners_back_is_found_behind_and_caught_up(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    """`mpks rebuild` empties a read model and its positions while the worker runs: the
    worker's batches read the positions under their locks, so the others go on from where
    they are and the rebuilt one from the start."""
    await add_events(registry, 3)
    kept, rebuilt = Probe("kept"), Probe("rebuilt")
    live = runner(registry, registry.logs, [kept, rebuilt])
    await live.catch_up([TENANT])
    await owner.execute("DELETE FROM probe_batches.seen WHERE projection = $1", rebuilt.name)
    await owner.execute(
        "DELETE FROM registry.projection_positions WHERE projection = $1", rebuilt.name
    )
    await add_events(registry, 2)
    log = await log_of(registry)

    await live.catch_up([TENANT])

    for probe in (kept, rebuilt):
        assert await seen(owner, probe) == log, probe.name
        assert await position(owner, probe) == log[-1]


class Stuck(Probe):
    """Waits at one position, its rows of the batch so far sent (a read sends them), until
    let go."""

    def __init__(self, name: str, stuck_at: int) -> None:
        super().__init__(name)
        self.stuck_at = stuck_at
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def after_row(self, conn: DbConnection, envelope: EventEnvelope) -> None:
        if envelope.position == self.stuck_at:
            assert await conn.fetchval("SELECT count(*) FROM probe_batches.seen") > 0
            self.reached.set()
            await self.release.wait()


async def test_a_pass_cancelled_in_a_batch_leaves_nothing_of_it_and_the_next_applies_it_once(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any], probes: None
) -> None:
    """A worker stopped in the middle of a batch (shutdown, a lost leader lock): the batch's
    transaction ends with it, the connection goes back to the pool usable, and the next pass
    applies the batch once."""
    await add_events(registry, 5)
    log = await log_of(registry)
    stuck = Stuck("stuck", stuck_at=log[-2])
    done = Probe("stuck")  # the same read model, in a runner that does not stop
    started = asyncio.create_task(runner(registry, registry.logs, [stuck], 10).catch_up([TENANT]))
    await asyncio.wait_for(stuck.reached.wait(), 10)
    before = await position(owner, stuck)
    started.cancel()
    with pytest.raises(asyncio.CancelledError):
        await started
    assert await position(owner, stuck) == before
    assert [p for p in await seen(owner, stuck) if p > (before or 0)] == []
    # Every connection of the pool still answers, outside any transaction.
    conns = [await registry.db.acquire() for _ in range(registry.db.get_max_size())]
    try:
        for conn in conns:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        for conn in conns:
            await registry.db.release(conn)

    await runner(registry, registry.logs, [done], 10).catch_up([TENANT])
    assert await seen(owner, done) == log
    assert await position(owner, done) == log[-1]
