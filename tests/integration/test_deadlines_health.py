"""What operators see of the kernel's deadlines (shared/scheduling): a deadline no scheduler
issued shows as overdue, a refused one is kept with its reason, retried without looping
and issued once after a fix; the scheduler waits out a PostgreSQL it cannot reach — on real
PostgreSQL, with a clock the tests move.

Each test has a database of its own: the deadlines it leaves overdue or refused would make
every other test's service `degraded`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest

from mpks.up import run_retry
from services.registry.application.expire_accreditation import ExpireAccreditation
from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.domain.accreditation import Grade, Scores
from services.registry.projections.accreditation import expiry_moment
from shared.runtime import ServiceRuntime
from shared.scheduling.scheduler import Scheduler
from shared.settings import Settings
from tests.helpers import (
    MovableClock,
    eventually,
    expiries_of,
    fresh_database,
    register_institution_in,
    run_command,
    running,
)

TENANT = "63"  # Kalimantan Selatan (WITA, UTC+8)
POLL = 10.0
VALID_UNTIL = date(2026, 1, 31)


@dataclass
class Alone:
    runtime: ServiceRuntime
    # The owner's login (sees every tenant) and the settings of `mpks` commands.
    owner: asyncpg.Connection[Any]
    settings: Settings


@asynccontextmanager
async def registry_alone(settings: Settings, clock: MovableClock) -> AsyncIterator[Alone]:
    """The registry (no background tasks) on a fresh database."""
    assert settings.database_url is not None
    async with fresh_database(settings.database_url, "deadlines") as database_url:
        own = settings.replace(database_url=database_url)
        async with running("registry", own, clock=clock) as runtime:
            owner = await asyncpg.connect(database_url)
            try:
                yield Alone(runtime, owner, own)
            finally:
                await owner.close()


async def accredited(runtime: ServiceRuntime, name: str) -> UUID:
    """An institution accredited until VALID_UNTIL, its expiry deadline set."""
    lksa = await register_institution_in(runtime, TENANT, name)
    await run_command(
        runtime,
        TENANT,
        RecordAccreditation(
            institution_id=lksa,
            grade=Grade.A,
            scores=Scores(
                programme=90, human_resources=90, management=90, facilities=90, service_results=90
            ),
            decided_on=date(2026, 1, 2),
            valid_until=VALID_UNTIL,
            regulation="Permensos 8/2025",
            certificate_number=f"KALSEL/{lksa}",
        ),
    )
    await runtime.projections.catch_up()
    return lksa


async def test_a_deadline_no_scheduler_issued_shows_overdue_after_two_polls(
    settings: Settings,
) -> None:
    clock = MovableClock(datetime(2026, 1, 10, tzinfo=UTC))
    async with registry_alone(settings, clock) as alone:
        runtime = alone.runtime
        await accredited(runtime, "LKSA Martapura")
        due = expiry_moment(TENANT, VALID_UNTIL)
        assert runtime.scheduler.poll_seconds == POLL
        # One poll late is a scheduler on its way, not a problem.
        clock.moment = due + timedelta(seconds=POLL)
        assert (await runtime.scheduler.report()).overdue == 0
        assert (await runtime.ready()).status == "ready"

        clock.moment = due + timedelta(seconds=2 * POLL + 1)
        report = await runtime.scheduler.report()
        assert (report.overdue, report.oldest_overdue, report.refused) == (1, due, 0)
        ready = await runtime.ready()
        assert ready.status == "degraded"
        assert ready.deadlines == report

        assert await runtime.scheduler.issue_due() == 1
        assert not (await runtime.scheduler.report()).needs_attention
        assert (await runtime.ready()).status == "ready"


async def test_a_refused_deadline_is_kept_shown_retried_slowly_and_issued_once_after_a_fix(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = MovableClock(datetime(2026, 1, 10, tzinfo=UTC))
    async with registry_alone(settings, clock) as alone:
        runtime, owner = alone.runtime, alone.owner
        lksa = await accredited(runtime, "LKSA Barabai")
        key = f"accreditation-expiry:{lksa}"
        # A fault of the kind a bug leaves: the command names a record that is not there.
        good = await owner.fetchval("SELECT payload FROM registry.deadlines WHERE key = $1", key)
        command = msgspec.json.decode(good, type=ExpireAccreditation)
        broken = msgspec.json.encode(msgspec.structs.replace(command, institution_id=uuid4()))
        await owner.execute(
            "UPDATE registry.deadlines SET payload = $2 WHERE key = $1", key, broken.decode()
        )
        due = expiry_moment(TENANT, VALID_UNTIL)
        clock.moment = due + timedelta(seconds=1)
        assert await runtime.scheduler.issue_due() == 1
        assert await expiries_of(runtime, TENANT, lksa) == 0

        # Kept, with why, and tried again only after a pause: no loop.
        report = await runtime.scheduler.report()
        assert (report.overdue, report.refused) == (0, 1)
        (refusal,) = report.refusals
        assert (refusal.tenant, refusal.key, refusal.command) == (
            TENANT,
            key,
            "ExpireAccreditation",
        )
        assert (refusal.due_at, refusal.attempts) == (due, 1)
        assert refusal.reason.startswith("NotFound")
        assert refusal.retry_at == clock.moment + timedelta(minutes=1)
        ready = await runtime.ready()
        assert (ready.status, ready.deadlines) == ("degraded", report)
        assert await runtime.scheduler.issue_due() == 0
        clock.moment += timedelta(minutes=1)
        assert await runtime.scheduler.issue_due() == 1
        (refusal,) = (await runtime.scheduler.report()).refusals
        assert refusal.attempts == 2
        assert refusal.retry_at == clock.moment + timedelta(minutes=2)

        # The fix is deployed (here: the deadline made right), the operator runs
        # `mpks retry registry --tenant 63`: issued at the next pass, once.
        await owner.execute("UPDATE registry.deadlines SET payload = $2 WHERE key = $1", key, good)
        for tenant, retried in (("31", 0), (TENANT, 1)):
            assert await asyncio.to_thread(run_retry, alone.settings, "registry", tenant) == 0
            assert f"registry: {retried} refused deadline(s)" in capsys.readouterr().out
        (refusal,) = (await runtime.scheduler.report()).refusals
        assert (refusal.retry_at, refusal.reason[:8]) == (None, "NotFound")
        assert await runtime.scheduler.issue_due() == 1
        assert await runtime.scheduler.issue_due() == 0
        assert await expiries_of(runtime, TENANT, lksa) == 1
        assert not (await runtime.scheduler.report()).needs_attention
        assert (await runtime.ready()).status == "ready"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_scheduler_waits_out_a_database_it_cannot_reach_and_then_issues(
    settings: Settings,
) -> None:
    """The scheduler's own reads fail (its leader lock may still hold, e.g. with the
    server out of connections): the loop does not end, health says what it waits on, and
    the deadline is issued once the database answers."""
    clock = MovableClock(datetime(2026, 1, 10, tzinfo=UTC))
    async with registry_alone(settings, clock) as alone:
        runtime = alone.runtime
        lksa = await accredited(runtime, "LKSA Kandangan")
        unreachable = await asyncpg.create_pool(
            f"postgresql://mpks_app@127.0.0.1:{_closed_port()}/mpks", min_size=0
        )
        scheduler = Scheduler(
            schema="registry", pool=unreachable, bus=runtime.bus, clock=clock, poll_seconds=0.2
        )
        clock.moment = expiry_moment(TENANT, VALID_UNTIL)
        stop = asyncio.Event()
        running_scheduler = asyncio.create_task(scheduler.run(stop))
        try:

            async def waiting() -> str | None:
                return scheduler.waiting_on

            assert "ConnectionRefusedError" in await eventually(waiting)
            await asyncio.sleep(1)  # several failed passes
            assert not running_scheduler.done()
            assert await expiries_of(runtime, TENANT, lksa) == 0

            scheduler.pool = runtime.db  # the database answers again

            async def expired() -> bool:
                return await expiries_of(runtime, TENANT, lksa) == 1

            await eventually(expired)
            await asyncio.sleep(0.5)
            assert scheduler.waiting_on is None
            assert await expiries_of(runtime, TENANT, lksa) == 1
        finally:
            stop.set()
            await asyncio.wait_for(running_scheduler, 5)
            await unreachable.close()
