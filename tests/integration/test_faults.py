"""The fault scenarios of a bad day, against real servers that the tests stop and empty:
NATS restarted with an empty store, PostgreSQL stopped for 20 s with messages waiting or
with a deadline falling due.
Each must converge with no restart of the service's parts, losing and doubling nothing.

Both servers here are private to this module (the machine's own keep serving other tests).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.bootstrap import build_runtime
from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.domain.accreditation import Grade, Scores
from services.registry.projections.accreditation import expiry_moment
from shared.db.pool import tenant_transaction
from shared.devstack.nats import EmbeddedNats
from shared.devstack.postgres import EmbeddedPostgres
from shared.eventstore.logs import TenantChanges
from shared.messaging.consumer import EventConsumer
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import (
    MovableClock,
    eventually,
    expiries_of,
    fresh_database,
    own_streams,
    register_institution_in,
    run_command,
)
from tests.integration.test_relay_and_consumer import (
    SCHEMA,
    SOURCE,
    LogFeed,
    RecordEffect,
    effects,
    parked_messages,
    prepare_effects,
    register,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.embedded]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Outside pytest's temp folder: as root the embedded PostgreSQL runs as another user.
    path = Path(tempfile.mkdtemp(prefix="mpks-faults-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def registry_on(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    """The registry's parts (no background tasks: each test runs the ones it stages)."""
    runtime = build_runtime(SOURCE, settings, run_background=False)
    await runtime.start()
    try:
        assert settings.database_url is not None
        await prepare_effects(settings.database_url)
        yield runtime
    finally:
        await runtime.stop()


def consumer_of(runtime: ServiceRuntime, name: str) -> EventConsumer:
    return EventConsumer(
        name=name,
        schema=SCHEMA,
        source=SOURCE,
        pool=runtime.db,
        js=runtime.js,
        subjects=runtime.relay.subjects,
        reactions=[RecordEffect(name)],
        catalogue=runtime.catalogue,
        feed=LogFeed(runtime.db, runtime.logs),
        backoff_seconds=(0.2, 0.5, 1.0),
        reconcile_seconds=0.5,
    )


async def positions_of(runtime: ServiceRuntime, tenant: str) -> list[int]:
    async with runtime.db.acquire() as conn:
        return [e.position for e in await runtime.logs.read(conn, tenant, after=0, limit=10_000)]


async def test_nats_restarted_with_an_empty_store_recovers_without_restarts(
    scratch: Path, settings: Settings
) -> None:
    nats_server = EmbeddedNats(scratch / "nats", _free_port())
    nats_url = nats_server.start()
    assert settings.database_url is not None
    try:
        async with (
            fresh_database(settings.database_url, "faults") as database_url,
            own_streams(nats_url, "faults") as prefix,
            registry_on(
                settings.replace(database_url=database_url, nats_url=nats_url, nats_prefix=prefix)
            ) as runtime,
        ):
            await register(runtime, "35", 3)
            stop = asyncio.Event()
            relay = asyncio.create_task(runtime.relay.run(TenantChanges(), stop, poll=0.3))
            consumer = consumer_of(runtime, "faults-nats")
            consuming = asyncio.create_task(consumer.run(stop, batch=16))
            try:

                async def applied(count: int) -> bool:
                    return len(await effects(runtime, "faults-nats", "35")) == count

                await eventually(lambda: applied(3))

                # NATS comes back with nothing: no stream, no consumer, no messages.
                nats_server.stop()
                shutil.rmtree(nats_server.store_dir)
                await register(runtime, "35", 2)

                async def relay_shows_it_is_stuck() -> bool:
                    return runtime.relay.waiting_on is not None and runtime.relay.lag == 2

                await eventually(relay_shows_it_is_stuck)
                nats_server.start()
                restarted = time.monotonic()

                log = await positions_of(runtime, "35")
                await eventually(lambda: applied(5), within=60)
                converged = time.monotonic() - restarted
                assert await effects(runtime, "faults-nats", "35") == log
                # The relay published again what the stream lost, and the new events.
                stream = runtime.relay.subjects.stream(SOURCE)
                info = await runtime.js.stream_info(stream)
                assert info.state.messages == 5
                assert runtime.relay.rewound == 3
                assert runtime.relay.waiting_on is None
                assert not relay.done()
                assert not consuming.done()
                print(f"NATS store lost: converged {converged:.1f} s after NATS returned")
            finally:
                stop.set()
                await asyncio.gather(relay, consuming)
    finally:
        nats_server.stop()


async def test_consumer_survives_a_postgres_outage_with_messages_waiting(
    scratch: Path, settings: Settings
) -> None:
    """PostgreSQL stops for 20 s while 120 messages wait: nothing is parked, no delivery is
    used up for good, the loop never dies, and all 120 apply once after it returns."""
    postgres = EmbeddedPostgres(scratch / "pg", _free_port())
    server_url = postgres.start()
    assert settings.nats_url is not None
    try:
        async with (
            fresh_database(server_url, "outage") as database_url,
            own_streams(settings.nats_url, "outage") as prefix,
            registry_on(settings.replace(database_url=database_url, nats_prefix=prefix)) as runtime,
        ):
            await register(runtime, "35", 60)
            await register(runtime, "36", 60)
            assert await runtime.relay.publish_pending() == 120
            logs = {t: await positions_of(runtime, t) for t in ("35", "36")}

            postgres.stop()
            stop = asyncio.Event()
            consumer = consumer_of(runtime, "faults-pg")
            consuming = asyncio.create_task(consumer.run(stop, batch=16))
            try:
                await asyncio.sleep(20)
                assert not consuming.done()
                assert consumer.waiting_on is not None
                postgres.start()
                returned = time.monotonic()

                async def all_applied() -> bool:
                    try:
                        for tenant, log in logs.items():
                            if await effects(runtime, "faults-pg", tenant) != log:
                                return False
                    except OSError:
                        return False
                    return True

                await eventually(all_applied, within=60)
                converged = time.monotonic() - returned
                assert await parked_messages(runtime, "faults-pg") == 0
                assert await consumer.stalls.all() == {}
                assert not consuming.done()
                print(f"PostgreSQL outage 20 s: converged {converged:.1f} s after it returned")
            finally:
                stop.set()
                await asyncio.wait_for(consuming, 10)
    finally:
        postgres.stop()


async def test_a_deadline_due_during_a_postgres_outage_is_issued_once_after_it(
    scratch: Path, settings: Settings
) -> None:
    """An accreditation's date passes while PostgreSQL is down for 20 s: the scheduler (as
    the worker runs it: supervised, as leader) says it waits, neither crashes nor stops,
    and expires the accreditation once when PostgreSQL is back."""
    tenant = "63"  # Kalimantan Selatan (WITA)
    postgres = EmbeddedPostgres(scratch / "pg", _free_port())
    server_url = postgres.start()
    assert settings.nats_url is not None
    clock = MovableClock(datetime(2026, 1, 10, tzinfo=UTC))
    try:
        async with (
            fresh_database(server_url, "deadline") as database_url,
            own_streams(settings.nats_url, "deadline") as prefix,
        ):
            runtime = build_runtime(
                "registry",
                settings.replace(
                    database_url=database_url, nats_prefix=prefix, scheduler_poll_seconds=1.0
                ),
            )
            runtime.clock = clock
            await runtime.start()
            try:
                lksa = await register_institution_in(runtime, tenant, "LKSA Banjarmasin")
                await run_command(
                    runtime,
                    tenant,
                    RecordAccreditation(
                        institution_id=lksa,
                        grade=Grade.B,
                        scores=Scores(
                            programme=70,
                            human_resources=70,
                            management=70,
                            facilities=70,
                            service_results=70,
                        ),
                        decided_on=date(2026, 1, 5),
                        valid_until=date(2026, 1, 31),
                        regulation="Permensos 8/2025",
                        certificate_number="KALSEL/2026/1",
                    ),
                )

                async def deadline_set() -> bool:
                    async with tenant_transaction(runtime.db, tenant) as conn:
                        return bool(await conn.fetchval("SELECT count(*) FROM registry.deadlines"))

                await eventually(deadline_set, within=30)
                assert (await runtime.ready()).status == "ready"

                postgres.stop()
                clock.moment = expiry_moment(tenant, date(2026, 1, 31)) + timedelta(seconds=1)
                await asyncio.sleep(20)
                ready = await runtime.ready()
                assert ready.status == "not ready"
                assert ready.tasks["scheduler"].startswith("waiting: "), ready.tasks
                assert runtime.supervisor.states["scheduler"].running

                postgres.start()
                returned = time.monotonic()

                async def expired() -> bool:
                    try:
                        return await expiries_of(runtime, tenant, lksa) > 0
                    except OSError:
                        return False

                await eventually(expired, within=60)
                issued = time.monotonic() - returned
                # More passes (a poll is 1 s): nothing issues it again.
                await asyncio.sleep(3)
                assert await expiries_of(runtime, tenant, lksa) == 1

                async def settled() -> bool:
                    return (await runtime.ready()).status == "ready"

                await eventually(settled, within=30)
                assert runtime.supervisor.states["scheduler"].restarts == 0
                report = await runtime.scheduler.report()
                assert (report.overdue, report.refused) == (0, 0)
                print(f"PostgreSQL outage 20 s: deadline issued {issued:.1f} s after it returned")
            finally:
                await runtime.stop()
    finally:
        postgres.stop()
