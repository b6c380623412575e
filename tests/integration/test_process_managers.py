"""Process managers on real PostgreSQL: cases' rule "when an institution is closed, flag the
complaints about it" issues commands into cases' own log, once per complaint, however often
the registry's event is delivered; and a process manager may act in another tenant.

Tenants 62 and 63 belong to this module.
"""

from __future__ import annotations

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
from services.cases.process_managers.when_institution_closed_flag_complaints import (
    WhenInstitutionClosedFlagComplaints,
)
from shared.db.pool import tenant_transaction
from shared.eventstore.envelope import EventEnvelope, EventMeta
from shared.projections.dispatch import typed
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import accepted, run_command, running

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def cases(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("cases", settings) as runtime:
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
