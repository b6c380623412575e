"""Process managers on real PostgreSQL: cases' rule "when an institution is closed, flag the
complaints about it" issues commands into cases' own log, once per complaint, however often
the registry's event is delivered, and whatever cases learns first: the closure or the
complaint, in either order and at the same time; and a process manager may act in another
tenant.

In a database of its own: the session's running cases service (the e2e tests') would
otherwise apply these tenants' events in the background, in the middle of the races the
tests stage by hand (it once projected a complaint the closure rule was meant not to find).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest

from services.cases.application.flag_complaint import FlagComplaint
from services.cases.application.receive_complaint import ReceiveComplaint
from services.cases.domain.complaint import Channel, ComplaintFlag
from services.cases.process_managers.when_complaint_received_flag_if_institution_closed import (
    WhenComplaintReceivedFlagIfInstitutionClosed,
)
from services.cases.process_managers.when_institution_closed_flag_complaints import (
    WhenInstitutionClosedFlagComplaints,
)
from services.cases.projections.institution_directory import InstitutionDirectoryProjection
from shared.db.pool import tenant_transaction
from shared.devstack.stack import DevStack
from shared.eventstore.envelope import EventEnvelope, EventMeta
from shared.projections.dispatch import typed
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import accepted, eventually, own_settings, run_command, running

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def own(backing: DevStack, settings: Settings) -> AsyncIterator[Settings]:
    async with own_settings(backing.database_url, backing.nats_url, settings, "pm") as own:
        yield own


@pytest.fixture
async def owner(own: Settings) -> AsyncIterator[asyncpg.Connection[Any]]:
    """The migrating login on this module's database (sees every tenant)."""
    assert own.database_url is not None
    conn = await asyncpg.connect(own.database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def cases(own: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("cases", own) as runtime:
        yield runtime


def registry_event(
    tenant: str, position: int, institution: UUID, event: str, version: int, **data: Any
) -> EventEnvelope:
    """An event of the registry's log as NATS delivers it."""
    return EventEnvelope(
        service="registry",
        tenant=tenant,
        position=position,
        previous_position=position - 1 if position > 1 else None,
        aggregate="Institution",
        aggregate_id=institution,
        aggregate_version=version,
        event=event,
        event_version=1,
        occurred_at=datetime.now(UTC),
        meta=EventMeta(
            tenant=tenant, actor="admin", correlation_id="closing-1", reason="dibubarkan"
        ),
        data=data,
    )


async def flags_in(owner: asyncpg.Connection[Any], tenant: str) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        f"""SELECT originator_id, state FROM cases_t{tenant}.cases_events
            WHERE topic = 'Complaint.Flagged' ORDER BY notification_id"""
    )
    return [
        {"complaint": r["originator_id"], **msgspec.json.decode(bytes(r["state"]))} for r in rows
    ]


async def test_a_closed_institutions_complaints_are_flagged_once_however_often_it_arrives(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    [consumer] = cases.consumers
    institution = uuid4()
    await consumer.process(
        registry_event(
            "62",
            1,
            institution,
            "Registered",
            1,
            name="LKSA Muhammadiyah Palangka Raya",
            kind="lksa",
            owner="muhammadiyah",
            pdm="6271",
            address=None,
        )
    )
    about = ReceiveComplaint(
        channel=Channel.EMAIL, summary="Makanan anak asuh kurang.", institution_id=institution
    )
    complaints = [accepted(await run_command(cases, "62", about)).id for _ in range(2)]
    await cases.projections.catch_up(["62"])

    closed = registry_event("62", 2, institution, "Closed", 2)
    await consumer.process(closed)
    first = await flags_in(owner, "62")
    assert sorted(f["complaint"] for f in first) == sorted(complaints)
    for flag in first:
        assert flag["data"]["flag"] == "institution_closed"
        assert flag["meta"]["causation_id"] == "registry.62.2"
        assert flag["meta"]["correlation_id"] == "closing-1"
        assert flag["meta"]["reason"] == "institution closed: dibubarkan"

    # A crash after the commands committed but before the consumer recorded the message:
    # NATS delivers it again and the rule runs again — and records nothing new.
    [manager] = [
        r for r in consumer.reactions if isinstance(r, WhenInstitutionClosedFlagComplaints)
    ]
    async with tenant_transaction(cases.db, "62") as conn:
        await manager.on(typed(cases.sources["registry"], closed), conn, closed)
    await consumer.process(closed)
    assert await flags_in(owner, "62") == first

    await cases.projections.catch_up(["62"])
    async with tenant_transaction(cases.db, "62") as conn:
        shown = await conn.fetch(
            "SELECT flags FROM cases.complaints WHERE id = ANY($1)", complaints
        )
    assert [r["flags"] for r in shown] == [["institution_closed"]] * 2


async def test_a_process_manager_may_act_in_another_tenant(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    complaint = accepted(
        await run_command(
            cases,
            "63",
            ReceiveComplaint(channel=Channel.WEB, summary="Rujukan dari provinsi lain."),
        )
    ).id
    manager = WhenInstitutionClosedFlagComplaints(cases.bus)
    cause = registry_event("62", 7, uuid4(), "Closed", 3)
    flag = FlagComplaint(
        complaint_id=complaint, flag=ComplaintFlag.INSTITUTION_CLOSED, reason="rujukan ditutup"
    )
    for _ in range(2):
        await manager.issue(flag, tenant="63", cause=cause, about=complaint)
    [flagged] = await flags_in(owner, "63")
    assert flagged["complaint"] == complaint
    assert flagged["meta"]["tenant"] == "63"
    assert flagged["meta"]["causation_id"] == "registry.62.7"
    # The cause's own tenant is untouched by it.
    assert not [f for f in await flags_in(owner, "62") if f["complaint"] == complaint]


def registered(tenant: str, institution: UUID) -> EventEnvelope:
    return registry_event(
        tenant,
        1,
        institution,
        "Registered",
        1,
        name="Panti Asuhan Muhammadiyah",
        kind="lksa",
        owner="muhammadiyah",
        pdm=f"{tenant}01",
        address=None,
    )


def closed(tenant: str, institution: UUID) -> EventEnvelope:
    return registry_event(tenant, 2, institution, "Closed", 2)


async def receive_about(cases: ServiceRuntime, tenant: str, institution: UUID) -> UUID:
    about = ReceiveComplaint(
        channel=Channel.PHONE, summary="Anak asuh belum dipindahkan.", institution_id=institution
    )
    return accepted(await run_command(cases, tenant, about)).id


async def shown_flags(cases: ServiceRuntime, tenant: str, complaint: UUID) -> list[str]:
    await cases.projections.catch_up([tenant])
    async with tenant_transaction(cases.db, tenant) as conn:
        flags: list[str] = await conn.fetchval(
            "SELECT flags FROM cases.complaints WHERE id = $1", complaint
        )
    return flags


async def test_a_complaint_about_an_institution_closed_before_is_flagged_at_receipt(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    [consumer] = cases.consumers
    institution = uuid4()
    await consumer.process(registered("65", institution))
    await consumer.process(closed("65", institution))
    complaint = await receive_about(cases, "65", institution)
    await cases.projections.catch_up(["65"])
    [flag] = await flags_in(owner, "65")
    assert flag["complaint"] == complaint
    assert flag["data"]["flag"] == "institution_closed"
    assert flag["meta"]["reason"] == "institution closed: the complaint names a closed institution"
    # Caused by the complaint's receipt, in its correlation.
    assert flag["meta"]["causation_id"].startswith("cases.65.")
    assert await shown_flags(cases, "65", complaint) == ["institution_closed"]


async def test_a_complaint_cases_had_not_seen_when_the_closure_came_is_flagged_once(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    [consumer] = cases.consumers
    institution = uuid4()
    await consumer.process(registered("71", institution))
    # Received before the closure, but cases' readers have not read it yet.
    complaint = await receive_about(cases, "71", institution)
    await consumer.process(closed("71", institution))
    assert await flags_in(owner, "71") == []
    await cases.projections.catch_up(["71"])
    assert [f["complaint"] for f in await flags_in(owner, "71")] == [complaint]
    assert await shown_flags(cases, "71", complaint) == ["institution_closed"]


async def test_when_both_paths_ask_the_flag_is_raised_once(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    [consumer] = cases.consumers
    institution = uuid4()
    await consumer.process(registered("72", institution))
    complaint = await receive_about(cases, "72", institution)
    await cases.projections.catch_up(["72"])
    await consumer.process(closed("72", institution))
    [flag] = await flags_in(owner, "72")
    assert flag["meta"]["causation_id"] == "registry.72.2"
    # Replayed, the receipt's rule now finds the institution closed and asks too.
    await cases.projections.rebuild(owner, WhenComplaintReceivedFlagIfInstitutionClosed.name)
    assert await flags_in(owner, "72") == [flag]
    assert await shown_flags(cases, "72", complaint) == ["institution_closed"]


async def waiting_on(owner: asyncpg.Connection[Any], statement: str) -> bool:
    """Whether a session is waiting for a lock while running `statement`."""
    found = await owner.fetchval(
        """SELECT count(*) FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'
             AND query LIKE '%' || $1 || '%'""",
        statement,
    )
    return bool(found)


async def test_a_closure_and_a_receipt_at_the_same_time_flag_the_complaint_in_either_order(
    cases: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    [consumer] = cases.consumers
    receipt_rule = WhenComplaintReceivedFlagIfInstitutionClosed(cases.bus)
    closure_rule = next(
        r for r in consumer.reactions if isinstance(r, WhenInstitutionClosedFlagComplaints)
    )

    async def receipt_of(complaint: UUID) -> EventEnvelope:
        async with cases.db.acquire() as conn:
            [received] = [
                e
                for e in await cases.logs.read(conn, "76", after=0, limit=100)
                if e.aggregate_id == complaint
            ]
        return received

    async def apply_receipt_rule(received: EventEnvelope) -> None:
        # As the projection runner applies it, before cases' read model shows the complaint.
        async with tenant_transaction(cases.db, "76") as conn:
            await receipt_rule.on(typed(cases.catalogue, received), conn, received)

    # The receipt's rule holds the institution's row, still active, when the closure comes:
    # the closure waits for it, then finds the complaint noted.
    first = uuid4()
    await consumer.process(registered("76", first))
    complaint = await receive_about(cases, "76", first)
    received = await receipt_of(complaint)
    async with tenant_transaction(cases.db, "76") as conn:
        await receipt_rule.on(typed(cases.catalogue, received), conn, received)
        closing = asyncio.create_task(consumer.process(closed("76", first)))
        await eventually(lambda: waiting_on(owner, "UPDATE cases.institution_directory"))
    await closing
    [flag] = await flags_in(owner, "76")
    assert (flag["complaint"], flag["meta"]["causation_id"]) == (complaint, "registry.76.2")

    # The closure holds the row when the receipt's rule runs: the rule waits for it, then
    # finds the institution closed (the closure found the complaint nowhere).
    second = uuid4()
    await consumer.process(registry_event("76", 3, second, "Registered", 1, **_fields("76")))
    late = await receive_about(cases, "76", second)
    late_received = await receipt_of(late)
    closure = registry_event("76", 4, second, "Closed", 2)
    async with tenant_transaction(cases.db, "76") as conn:
        event = typed(cases.sources["registry"], closure)
        await InstitutionDirectoryProjection().on(event, conn, closure)
        noting = asyncio.create_task(apply_receipt_rule(late_received))
        await eventually(lambda: waiting_on(owner, "FOR SHARE"))
        await closure_rule.on(event, conn, closure)
    await noting
    [late_flag] = [f for f in await flags_in(owner, "76") if f["complaint"] == late]
    assert late_flag["meta"]["causation_id"] == late_received.message_id

    # cases' readers then apply everything: nothing is flagged twice.
    await cases.projections.catch_up(["76"])
    assert sorted(f["complaint"] for f in await flags_in(owner, "76")) == sorted([complaint, late])


def _fields(tenant: str) -> dict[str, Any]:
    return {
        "name": "Rumah Singgah Muhammadiyah",
        "kind": "rumah_singgah",
        "owner": "muhammadiyah",
        "pdm": f"{tenant}01",
        "address": None,
    }
