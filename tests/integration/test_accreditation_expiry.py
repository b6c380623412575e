"""An accreditation expires on its own, once: the accreditation projection sets the
deadline, the kernel's scheduler issues `ExpireAccreditation` when the clock passes it —
on real PostgreSQL, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.application.revoke_accreditation import RevokeAccreditation
from services.registry.domain.accreditation import Grade, Scores
from services.registry.projections.accreditation import expiry_moment
from shared.eventstore.envelope import EventEnvelope
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import MovableClock, register_institution_in, run_command, running

TENANT = "17"  # Bengkulu (WIB, UTC+7)
SCORES = Scores(programme=80, human_resources=80, management=80, facilities=80, service_results=80)


async def expiries(runtime: ServiceRuntime, institution: UUID) -> list[EventEnvelope]:
    """The institution's `Accreditation.Expired` events in the tenant log."""
    async with runtime.db.acquire() as conn:
        log = await runtime.logs.read(conn, TENANT, after=0, limit=100_000)
    return [
        e
        for e in log
        if (e.aggregate, e.event) == ("Accreditation", "Expired")
        and e.data["institution_id"] == str(institution)
    ]


async def grant(runtime: ServiceRuntime, institution: UUID, decided_on: date, **extra: Any) -> None:
    await run_command(
        runtime,
        TENANT,
        RecordAccreditation(
            institution_id=institution,
            grade=Grade.C,
            scores=SCORES,
            decided_on=decided_on,
            regulation="Permensos 8/2025",
            certificate_number=f"{institution}/{decided_on}",
            **extra,
        ),
    )


async def test_an_accreditation_expires_once_when_its_date_passes_and_never_again(
    settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    clock = MovableClock(datetime(2026, 1, 10, 3, tzinfo=UTC))
    async with running("registry", settings, clock=clock) as runtime:
        lksa = await register_institution_in(runtime, TENANT, "LKSA Bengkulu")
        await grant(runtime, lksa, date(2026, 1, 5), valid_until=date(2026, 1, 31))
        await runtime.projections.catch_up()
        end = expiry_moment(TENANT, date(2026, 1, 31))
        assert end == datetime(2026, 1, 31, 17, tzinfo=UTC)  # midnight in Bengkulu
        clock.moment = end - timedelta(seconds=1)
        await runtime.scheduler.issue_due()
        assert await expiries(runtime, lksa) == []
        clock.moment = end
        await runtime.scheduler.issue_due()
        assert len(await expiries(runtime, lksa)) == 1
        # Asked again before the projection saw the expiry: still one.
        await runtime.scheduler.issue_due()
        await runtime.projections.catch_up()
        status = await owner.fetchval(
            "SELECT status FROM registry.accreditations WHERE institution_id = $1", lksa
        )
        assert status == "expired"
    # A restart, days later: the due deadline is gone, nothing expires twice.
    clock.moment = end + timedelta(days=3)
    async with running("registry", settings, clock=clock) as runtime:
        await runtime.projections.catch_up()
        await runtime.scheduler.issue_due()
        assert len(await expiries(runtime, lksa)) == 1


async def test_a_deadline_issued_twice_records_the_expiry_once(
    settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    """A crash after the command, before the deadline's row was removed: the next pass
    issues it again, with the same idempotency key."""
    clock = MovableClock(datetime(2026, 1, 10, tzinfo=UTC))
    async with running("registry", settings, clock=clock) as runtime:
        lksa = await register_institution_in(runtime, TENANT, "LKSA Curup")
        await grant(runtime, lksa, date(2026, 1, 2), valid_until=date(2026, 2, 1))
        await runtime.projections.catch_up()
        row = await owner.fetchrow(
            "SELECT * FROM registry.deadlines WHERE key = $1", f"accreditation-expiry:{lksa}"
        )
        assert row is not None
        clock.moment = datetime(2026, 3, 1, tzinfo=UTC)
        await runtime.scheduler.issue_due()
        await owner.execute(
            """INSERT INTO registry.deadlines (tenant_id, key, due_at, command, payload,
                 scheduled_by) VALUES ($1, $2, $3, $4, $5, $6)""",
            row["tenant_id"],
            row["key"],
            row["due_at"],
            row["command"],
            row["payload"],
            row["scheduled_by"],
        )
        await runtime.scheduler.issue_due()
        assert len(await expiries(runtime, lksa)) == 1


async def test_caught_up_after_downtime_and_never_for_a_replaced_or_revoked_decision(
    settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    clock = MovableClock(datetime(2026, 1, 10, tzinfo=UTC))
    async with running("registry", settings, clock=clock) as runtime:
        renewed = await register_institution_in(runtime, TENANT, "LKSA Manna")
        revoked = await register_institution_in(runtime, TENANT, "LKSA Kepahiang")
        lapsed = await register_institution_in(runtime, TENANT, "LKSA Mukomuko")
        for lksa in (renewed, revoked, lapsed):
            await grant(runtime, lksa, date(2026, 1, 2), valid_until=date(2026, 2, 1))
        # Re-accredited before the date: the new decision holds until 2029.
        clock.moment = datetime(2026, 1, 20, tzinfo=UTC)
        await grant(runtime, renewed, date(2026, 1, 20))
        await run_command(
            runtime, TENANT, RevokeAccreditation(institution_id=revoked, reason="BAN-PS 9/2026")
        )
        await runtime.projections.catch_up()
    # Down through the date; at the restart the due deadline is caught up at once.
    clock.moment = datetime(2026, 6, 1, tzinfo=UTC)
    async with running("registry", settings, clock=clock) as runtime:
        await runtime.projections.catch_up()
        await runtime.scheduler.issue_due()
        assert len(await expiries(runtime, lapsed)) == 1
        assert await expiries(runtime, renewed) == []
        assert await expiries(runtime, revoked) == []
        due = await owner.fetchval(
            "SELECT due_at FROM registry.deadlines WHERE key = $1",
            f"accreditation-expiry:{renewed}",
        )
        assert due == expiry_moment(TENANT, date(2028, 1, 20))  # grade C: two years
        clock.moment = due
        await runtime.scheduler.issue_due()
        assert len(await expiries(runtime, renewed)) == 1
