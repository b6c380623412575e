"""Records and lists as of any date (issue 9, points 2 and 3), on real PostgreSQL: a record
folded from its snapshots reads exactly as folded from all its events; the directory as of
a date shows institutions as they were; rebuilds reproduce the history and the snapshots;
a record's personal data as of a date shows in its own service as it does now (erased once
erased), and no snapshot keeps it in plaintext.

Tenant 64 (Kalimantan Timur) belongs to this module.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.hr.application.register_worker import RegisterWorker
from services.registry.application.close_institution import CloseInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import Institution, InstitutionStatus
from services.registry.projections import institutions
from shared.audit.as_of import record_as_of
from shared.audit.snapshots import SNAPSHOT_INTERVAL, Snapshots
from shared.db.pool import tenant_transaction
from shared.personal.cipher import master_key
from shared.personal.erasure import EraseSubject
from shared.personal.fields import ERASED, WITHHELD
from shared.personal.keys import SubjectKeys
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import accepted, register_institution_in, run_command, running

pytestmark = pytest.mark.timeout(240)

TENANT = "64"
MICROSECOND = timedelta(microseconds=1)


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> Any:
    async with running("registry", settings) as runtime:
        yield runtime


async def event_times(runtime: ServiceRuntime, record: UUID) -> list[datetime]:
    """When each version of the record was recorded (index 0: version 1)."""
    async with runtime.db.acquire() as conn:
        return [e.occurred_at for e in await runtime.logs.of_record(conn, TENANT, record)]


async def test_a_long_record_reads_the_same_from_its_snapshots_as_from_all_its_events(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    record = await register_institution_in(registry, TENANT, "Nama 0")
    versions = 2 * SNAPSHOT_INTERVAL + SNAPSHOT_INTERVAL // 2
    for n in range(1, versions):
        await run_command(
            registry, TENANT, RenameInstitution(institution_id=record, name=f"Nama {n}")
        )
    await registry.projections.catch_up()
    taken = await owner.fetch(
        "SELECT version, aggregate FROM registry.snapshots WHERE aggregate_id = $1 ORDER BY 1",
        record,
    )
    assert [tuple(r) for r in taken] == [
        (SNAPSHOT_INTERVAL, "Institution"),
        (2 * SNAPSHOT_INTERVAL, "Institution"),
    ]
    times = await event_times(registry, record)
    assert len(times) == versions

    picks = [1, SNAPSHOT_INTERVAL - 1, SNAPSHOT_INTERVAL, SNAPSHOT_INTERVAL + 1, versions]
    picks += random.Random(9).sample(range(2, versions), 10)  # noqa: S311 (spread, not secrecy)
    async with tenant_transaction(registry.db, TENANT) as conn:
        for version in picks:
            at = times[version - 1]
            with_snapshots = await record_as_of(conn, registry.snapshots, TENANT, record, at)
            from_events = await record_as_of(
                conn, registry.snapshots, TENANT, record, at, use_snapshots=False
            )
            assert with_snapshots is not None
            assert with_snapshots.record is not None
            assert from_events is not None
            assert from_events.record is not None
            assert with_snapshots.record == from_events.record
            assert with_snapshots.record.version == version
            assert with_snapshots.record.state["name"] == f"Nama {version - 1}"
            # The aggregate read from a snapshot is the real thing, value types and all.
            assert isinstance(with_snapshots.aggregate, Institution)
            assert with_snapshots.aggregate.status is InstitutionStatus.ACTIVE
            assert with_snapshots.aggregate.id == record
            # A microsecond earlier is the version before.
            before = await record_as_of(conn, registry.snapshots, TENANT, record, at - MICROSECOND)
            assert before is not None
            if version == 1:
                assert before.record is None
                assert before.created_at == times[0]
            else:
                assert before.record is not None
                assert before.record.version == version - 1

        # From a snapshot, at most an interval of events is folded.
        folded = await registry.snapshots.fold(conn, TENANT, record, until=times[-2])
        assert folded.aggregate is not None
        assert folded.aggregate.version == versions - 1
        assert folded.folded == versions - 1 - 2 * SNAPSHOT_INTERVAL

    # A rebuild takes the same snapshots, byte for byte.
    dump = "SELECT * FROM registry.snapshots WHERE aggregate_id = $1 ORDER BY version"
    live = [dict(r) for r in await owner.fetch(dump, record)]
    await registry.projections.rebuild(owner, "snapshots")
    assert [dict(r) for r in await owner.fetch(dump, record)] == live

    # Snapshots taken before personal values were kept sealed in them are not read: the
    # record is folded from its events, the same record.
    await owner.execute(
        """UPDATE registry.snapshots SET state = convert_to(
               (convert_from(state, 'UTF8')::jsonb - '$format')::text, 'UTF8')
           WHERE aggregate_id = $1""",
        record,
    )
    async with tenant_transaction(registry.db, TENANT) as conn:
        earlier = await registry.snapshots.fold(conn, TENANT, record, until=times[-2])
        assert earlier.folded == versions - 1
        assert earlier.aggregate is not None
        assert vars(earlier.aggregate) == vars(folded.aggregate)


async def test_the_directory_as_of_a_date_shows_institutions_as_they_were(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    renamed = await register_institution_in(registry, TENANT, "LKSA Muhammadiyah Samarinda")
    closed = await register_institution_in(registry, TENANT, "Rumah Singgah Balikpapan")
    await registry.projections.catch_up()
    moment = (await event_times(registry, closed))[0]
    await run_command(
        registry,
        TENANT,
        RenameInstitution(institution_id=renamed, name="LKSA Muhammadiyah Kota Samarinda"),
    )
    await run_command(
        registry, TENANT, CloseInstitution(institution_id=closed, reason="yayasan dibubarkan")
    )
    later = await register_institution_in(registry, TENANT, "PSKM Aisyiyah Bontang")
    await registry.projections.catch_up()

    async def directory(as_of: datetime | None) -> dict[UUID, institutions.InstitutionView]:
        async with tenant_transaction(registry.db, TENANT) as conn:
            page = await institutions.list_institutions(
                conn,
                institutions.InstitutionFilters(),
                limit=500,
                offset=0,
                day=date.today(),
                as_of=as_of,
            )
        return {r.id: r for r in page.items if r.id in (renamed, closed, later)}

    then = await directory(moment)
    assert set(then) == {renamed, closed}
    assert (then[renamed].name, then[renamed].version) == ("LKSA Muhammadiyah Samarinda", 1)
    assert (then[closed].status, then[closed].version) == ("active", 1)
    # Before the closed institution's registration it is not there yet.
    assert set(await directory(moment - MICROSECOND)) == {renamed}
    now = await directory(None)
    assert set(now) == {renamed, closed, later}
    assert now[renamed].name == "LKSA Muhammadiyah Kota Samarinda"
    assert now[closed].status == InstitutionStatus.CLOSED
    # As of now, the history says what the current table says.
    assert await directory(datetime.now().astimezone()) == now

    # Each row's versions follow each other: one valid at any moment, the last one current.
    periods = await owner.fetch(
        """SELECT version, valid_from, valid_to, valid_to = 'infinity' AS current
           FROM registry.institutions_history WHERE id = $1 ORDER BY version""",
        renamed,
    )
    assert [(r["version"], r["current"]) for r in periods] == [(1, False), (2, True)]
    assert periods[0]["valid_to"] == periods[1]["valid_from"]

    # A rebuild reproduces every version with the same periods (event times, not the clock).
    dump = """SELECT * FROM registry.institutions_history WHERE tenant_id = $1
              ORDER BY id, version"""
    live = [dict(r) for r in await owner.fetch(dump, TENANT)]
    assert len(live) >= 5
    await registry.projections.rebuild(owner, "institutions")
    assert [dict(r) for r in await owner.fetch(dump, TENANT)] == live


# Distinctive: any trace of it in a snapshot row is plaintext at rest.
WORKER = "Kusumawardhani Larasati Prabaningrum"


async def test_a_worker_as_of_a_date_shows_their_name_in_hr_and_no_snapshot_keeps_it(
    settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    async with running("hr", settings) as hr:
        registered = RegisterWorker(full_name=WORKER, birth_date=date(1987, 2, 14), pdm="6472")
        worker = accepted(await run_command(hr, TENANT, registered)).id
        at = datetime.now(UTC)
        # A worker has one event today: a snapshot at every version makes one to read from.
        every_version = Snapshots("hr", hr.logs, interval=1)
        async with tenant_transaction(hr.db, TENANT) as conn:
            await every_version.take(conn, TENANT, worker, 1)
            from_snapshot = await every_version.fold(conn, TENANT, worker, until=at)
        assert from_snapshot.folded == 0

        async def name_as_of(snapshots: Snapshots, keys: SubjectKeys | None) -> Any:
            async with tenant_transaction(hr.db, TENANT) as conn:
                past = await record_as_of(conn, snapshots, TENANT, worker, at, keys=keys)
            assert past is not None
            assert past.record is not None
            return past.record.state["full_name"]

        async def snapshot_rows() -> str:
            rows = await owner.fetch("SELECT * FROM hr.snapshots WHERE aggregate_id = $1", worker)
            assert len(rows) == 1
            return repr([dict(r) for r in rows])

        # hr's own reader sees the name, from the snapshot or from the events alike.
        assert await name_as_of(every_version, hr.keys) == WORKER
        assert await name_as_of(hr.snapshots, hr.keys) == WORKER
        # A reader without hr's keys sees it withheld.
        assert await name_as_of(every_version, None) == WITHHELD
        # The snapshot holds the name sealed only: no word of it in any column.
        assert not [w for w in WORKER.split() if w in await snapshot_rows()]

        await run_command(
            hr, TENANT, EraseSubject(subject=worker, reason="Permintaan subjek data"), actor="a"
        )
        assert await name_as_of(every_version, hr.keys) == ERASED
        assert await name_as_of(hr.snapshots, hr.keys) == ERASED
        # A process whose cache still trusted the key learns of the erasure from the table.
        elsewhere = SubjectKeys("hr", master_key(settings))
        assert await name_as_of(every_version, elsewhere) == ERASED
        assert not [w for w in WORKER.split() if w in await snapshot_rows()]
