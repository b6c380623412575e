"""Old events reach every reader at their current version, and an event the code cannot
read stalls only its tenant, against real PostgreSQL and NATS.

The rows are written as an earlier (and a later) release of the cases service would have
written them: `Complaint.Received` v1 had no `pdm`; v4 does not exist yet in this code.
This module runs on a database and NATS prefix of its own, so no running service's relay or
projections reach its events before the test does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID, uuid4

import anyio.to_thread
import asyncpg
import httpx
import msgspec
import pytest

from services.cases.domain.complaint import Channel
from shared.auth import Role
from shared.devstack.stack import DevStack
from shared.domain.aggregate import AggregateRoot, event
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.context import CommandContext, command_context
from shared.eventstore.envelope import EventEnvelope, EventMeta
from shared.eventstore.stores import EventStorePool, TenantStores
from shared.http.app import create_app
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import auth, fresh_database, own_streams, running

pytestmark = pytest.mark.timeout(120)


class ComplaintOfRelease1(AggregateRoot):
    """`Complaint` as the first release recorded it."""

    class Received(AggregateRoot.Created):
        channel: Channel
        summary: str
        concerns_child: bool
        institution_id: UUID | None

    @event(Received)
    def __init__(
        self, channel: Channel, summary: str, concerns_child: bool, institution_id: UUID | None
    ) -> None:
        self.summary = summary


class ComplaintOfRelease4(AggregateRoot):
    """`Complaint` as a later release than this code might record it."""

    class Received(AggregateRoot.Created):
        channel: Channel
        summary: str
        concerns_child: bool
        institution_id: UUID | None
        pdm: str | None
        urgency: int
        class_version = 4

    @event(Received)
    def __init__(
        self,
        channel: Channel,
        summary: str,
        concerns_child: bool,
        institution_id: UUID | None,
        pdm: str | None,
        urgency: int,
    ) -> None:
        self.summary = summary


@pytest.fixture(scope="module")
async def cases(backing: DevStack, settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with (
        fresh_database(backing.database_url, "typed") as database_url,
        own_streams(backing.nats_url, "typed") as prefix,
        running("cases", settings.replace(database_url=database_url, nats_prefix=prefix)) as rt,
    ):
        yield rt


@pytest.fixture
async def owner(cases: ServiceRuntime) -> AsyncIterator[asyncpg.Connection[Any]]:
    """The migrating login of this module's database: sees every tenant."""
    conn = await asyncpg.connect(cases.database_url)
    try:
        yield conn
    finally:
        await conn.close()


Releases = dict[type[AggregateRoot], TenantStores]


@pytest.fixture(scope="module")
async def releases(cases: ServiceRuntime) -> AsyncIterator[Releases]:
    """The event stores of the other releases, on a pool of their own (as their processes
    would have). Kept for the module: a dropped store closes the pool it shares."""
    pool = EventStorePool(
        cases.database_url,
        types_schema=cases.name,
        pool_size=1,
        max_overflow=0,
        lock_timeout=cases.settings.lock_timeout_seconds,
    )
    try:
        yield {
            aggregate: TenantStores("cases", pool, EventCatalogue([("Complaint", aggregate)]))
            for aggregate in (ComplaintOfRelease1, ComplaintOfRelease4)
        }
    finally:
        await anyio.to_thread.run_sync(pool.close)


async def record_as(
    releases: Releases, aggregate: type[AggregateRoot], tenant: str, **fields: Any
) -> UUID:
    """Record one creation event as the release defining `aggregate` would have."""
    stores = releases[aggregate]

    def write() -> UUID:
        ctx = CommandContext(tenant=tenant, actor=f"officer-{tenant}", correlation_id="c-old")
        with command_context(ctx):
            complaint = aggregate(**fields)
            stores.get(tenant).save(complaint)
            return complaint.id

    return await anyio.to_thread.run_sync(write)


async def test_a_v1_complaint_reaches_the_feed_nats_and_read_models_as_v3(
    cases: ServiceRuntime,
    releases: Releases,
    owner: asyncpg.Connection[Any],
    token: Callable[..., str],
) -> None:
    complaint = await record_as(
        releases,
        ComplaintOfRelease1,
        "35",
        channel=Channel.PHONE,
        summary="Keluhan lama, sebelum PDM dicatat.",
        concerns_child=False,
        institution_id=None,
    )
    stored = await owner.fetchval(
        "SELECT state FROM cases_t35.cases_events WHERE originator_id = $1", complaint
    )
    assert msgspec.json.decode(bytes(stored))["v"] == 1

    # The events feed.
    # Litestar's app is an ASGI app; httpx's annotation wants another spelling of one.
    transport = httpx.ASGITransport(app=cast(Any, create_app(cases)))
    async with httpx.AsyncClient(transport=transport, base_url="http://cases") as http:
        r = await http.get("/v1/tenants/35/events", headers=auth(token("35", Role.WILAYAH_ADMIN)))
    assert r.status_code == 200, r.text
    [served] = [e for e in r.json()["events"] if e["aggregate_id"] == str(complaint)]
    assert (served["event"], served["event_version"]) == ("Received", 3)
    assert served["data"]["pdm"] is None

    # NATS, as the relay publishes it.
    assert await cases.relay.publish_pending(["35"]) >= 1
    envelope = msgspec.convert(served, EventEnvelope)
    message = await cases.js.get_last_msg(
        cases.relay.subjects.stream("cases"), cases.relay.subjects.of(envelope)
    )
    published = msgspec.json.decode(message.data or b"", type=EventEnvelope)
    assert (published.aggregate_id, published.event_version) == (complaint, 3)
    assert published.data["pdm"] is None

    # The read model, written from the typed event.
    await cases.projections.catch_up(["35"])
    row = await owner.fetchrow(
        "SELECT summary, pdm, received_by FROM cases.complaints WHERE id = $1", complaint
    )
    assert row is not None
    assert dict(row) == {
        "summary": "Keluhan lama, sebelum PDM dicatat.",
        "pdm": None,
        "received_by": "officer-35",
    }


async def test_an_event_newer_than_the_code_stalls_its_tenant_only(
    cases: ServiceRuntime, releases: Releases, owner: asyncpg.Connection[Any]
) -> None:
    await record_as(
        releases,
        ComplaintOfRelease4,
        "36",
        channel=Channel.WEB,
        summary="Dari rilis yang lebih baru.",
        concerns_child=False,
        institution_id=None,
        pdm="3601",
        urgency=2,
    )
    readable = await record_as(
        releases,
        ComplaintOfRelease1,
        "34",
        channel=Channel.EMAIL,
        summary="Tetap terbaca.",
        concerns_child=False,
        institution_id=None,
    )
    async with cases.db.acquire() as conn:
        [newer] = await cases.logs.read(conn, "36", after=0, limit=10)
    # The relay and the feed pass it on as it was recorded.
    assert (newer.event_version, newer.data["urgency"]) == (4, 2)

    await cases.projections.catch_up()
    stall = (await cases.projections.stalls["complaints"].all())["36"]
    assert stall.position == newer.position
    assert stall.reason == ("UnreadableEvent: Complaint.Received v4 is newer than this code (v3)")
    assert (
        await owner.fetchval("SELECT count(*) FROM cases.complaints WHERE id = $1", readable) == 1
    )


def registry_event(
    tenant: str, position: int, stable_name: str, version: int, **data: Any
) -> EventEnvelope:
    """An event of the registry's log as NATS or the registry's feed delivers it."""
    aggregate, _, kind = stable_name.partition(".")
    return EventEnvelope(
        service="registry",
        tenant=tenant,
        position=position,
        previous_position=None,
        aggregate=aggregate,
        aggregate_id=uuid4(),
        aggregate_version=1,
        event=kind,
        event_version=version,
        occurred_at=datetime.now(UTC),
        meta=EventMeta(tenant=tenant, actor="officer", correlation_id="c-1"),
        data=data,
    )


async def test_a_consumer_reads_another_services_events_typed_and_stalls_on_unreadable_ones(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    [directory] = cases.consumers
    registered = registry_event(
        "37",
        1,
        "Institution.Registered",
        1,
        name="LKSA Muhammadiyah Pontianak",
        kind="lksa",
        owner="muhammadiyah",
        pdm="6171",
        address=None,
    )
    await directory.process(registered)
    row = await owner.fetchrow(
        "SELECT name, kind, status, pdm FROM cases.institution_directory WHERE institution_id = $1",
        registered.aggregate_id,
    )
    assert row is not None
    assert dict(row) == {
        "name": "LKSA Muhammadiyah Pontianak",
        "kind": "lksa",
        "status": "active",
        "pdm": "6171",
    }

    closed = msgspec.structs.replace(
        registry_event("37", 2, "Institution.Closed", 1),
        aggregate_id=registered.aggregate_id,
        aggregate_version=2,
        previous_position=1,
    )
    await directory.process(closed)
    status = await owner.fetchval(
        "SELECT status FROM cases.institution_directory WHERE institution_id = $1",
        registered.aggregate_id,
    )
    assert status == "closed"

    await directory.process(registry_event("38", 1, "Institution.Renamed", 2, name="X"))
    stall = (await directory.stalls.all())["38"]
    assert stall.reason == "UnreadableEvent: Institution.Renamed v2 is newer than this code (v1)"
    assert "37" not in await directory.stalls.all()
