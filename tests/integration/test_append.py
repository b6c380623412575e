"""The command path's append (calls to the tenant schema's `append_events`, on asyncpg, that
commands arriving together share): a follower reading a log while many commands append to it
sees every position exactly once, in order, and each command its own events' positions; a
lost race and a reused Idempotency-Key are refused as such, for that command alone, whatever
call it shares; row-level security still binds the call; readers are woken after the commit,
in this process and in others."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.registry.application.close_unit import CloseUnit
from services.registry.application.open_unit import OpenUnit
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import Institution, InstitutionType, Owner
from services.registry.domain.organisation_unit import OrganisationUnit, UnitKind, unit_id
from shared.devstack.stack import DevStack
from shared.domain.errors import RuleBroken
from shared.eventstore.context import command_context
from shared.eventstore.logs import LogWatcher
from shared.eventstore.stores import events_table, tenant_schema
from shared.runtime import ServiceRuntime
from shared.service_layer.unit_of_work import ConcurrentWrite, IdempotencyRecord, StaleRead
from shared.settings import Settings
from shared.tenancy import province_codes
from tests.helpers import (
    accepted,
    context,
    own_settings,
    register_institution_in,
    run_command,
    running,
)

WRITERS = 32
COMMANDS_PER_WRITER = 12


@pytest.fixture(scope="module")
async def own(backing: DevStack, settings: Settings) -> AsyncIterator[Settings]:
    """A database and NATS prefix of this module's own: it writes to every tenant's log,
    where other modules expect positions of their own."""
    async with own_settings(backing.database_url, backing.nats_url, settings, "append") as own:
        yield own


async def _follow(
    runtime: ServiceRuntime, tenants: list[str], done: asyncio.Event
) -> dict[str, list[int]]:
    """Reads each tenant's log from where it left off, as the relay does, until the writers
    are done and it has caught up; the positions it saw, in the order it saw them."""
    seen: dict[str, list[int]] = {t: [] for t in tenants}
    async with runtime.db.acquire() as conn:
        while True:
            finished = done.is_set()
            for tenant in tenants:
                after = seen[tenant][-1] if seen[tenant] else 0
                while batch := await runtime.logs.read(conn, tenant, after=after, limit=20):
                    seen[tenant].extend(e.position for e in batch)
                    after = batch[-1].position
            if finished:
                return seen
            await asyncio.sleep(0)


@pytest.mark.parametrize("spread", ["one hot tenant", "every tenant"])
async def test_a_follower_sees_every_position_once_in_order_under_concurrent_appends(
    own: Settings, spread: str
) -> None:
    tenants = ["76"] if spread == "one hot tenant" else sorted(province_codes())
    async with running("registry", own) as runtime:
        async with runtime.db.acquire() as conn:
            before = {t: await runtime.logs.head(conn, t) for t in tenants}
        done = asyncio.Event()
        follower = asyncio.create_task(_follow(runtime, tenants, done))

        async def write(writer: int) -> list[tuple[str, int, UUID]]:
            positions = []
            for n in range(COMMANDS_PER_WRITER):
                tenant = tenants[(writer + n) % len(tenants)]
                outcome = await runtime.bus.execute(
                    RegisterInstitution(
                        name=f"LKSA Urutan {writer}-{n}",
                        kind=InstitutionType.LKSA,
                        pdm=f"{tenant}71",
                    ),
                    context(tenant),
                )
                assert outcome.position is not None
                positions.append((tenant, outcome.position, accepted(outcome).id))
            return positions

        try:
            written = [p for ps in await asyncio.gather(*map(write, range(WRITERS))) for p in ps]
        finally:
            done.set()
        seen = await follower

        async with runtime.db.acquire() as conn:
            final = {
                t: {
                    e.position: e.aggregate_id
                    for e in await runtime.logs.read(conn, t, after=before[t], limit=100_000)
                }
                for t in tenants
            }
        transactions = await _transactions(own, tenants[0], before[tenants[0]])
    assert len(written) == WRITERS * COMMANDS_PER_WRITER
    for tenant in tenants:
        positions = [p for p in seen[tenant] if p > before[tenant]]
        # In order, each once...
        assert positions == sorted(set(positions)), tenant
        # ...and nothing the follower had already passed turned up later.
        assert positions == list(final[tenant]), tenant
    # Each command was told the position of its own event.
    assert all(final[t][p] == institution for t, p, institution in written)
    if spread == "one hot tenant":
        # Commands arriving together shared a transaction.
        assert len(transactions) < len(written)


async def _transactions(settings: Settings, tenant: str, after: int | None) -> list[int]:
    """The transactions (by id) that appended to a log after a position, one per event."""
    table = f"{tenant_schema('registry', tenant)}.{events_table('registry')}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT DISTINCT xmin::text::bigint FROM {table} WHERE notification_id > $1",
            after or 0,
        )
    finally:
        await conn.close()
    return [r[0] for r in rows]


@asynccontextmanager
async def _log_locked(settings: Settings, tenant: str) -> AsyncIterator[None]:
    """Holds a tenant log's table lock, as an append in progress does: appends arriving
    meanwhile wait in line and share the next call."""
    table = f"{tenant_schema('registry', tenant)}.{events_table('registry')}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def _together(
    *commits: Awaitable[int | None], settings: Settings, tenant: str
) -> list[int | BaseException | None]:
    """Commits that reach the append while one is under way, so that all but the first
    share one call; their answers (a position, or the error), in order."""
    async with _log_locked(settings, tenant):
        answers = asyncio.gather(*commits, return_exceptions=True)
        # Until every commit is in line behind the first (blocked by the lock).
        await asyncio.sleep(0.5)
    return list(await answers)


async def test_a_lost_race_and_a_reused_key_are_concurrent_writes(own: Settings) -> None:
    tenant = "82"
    async with running("registry", own) as runtime:
        institution = await register_institution_in(runtime, tenant, "LKSA Balapan")
        units = runtime.bus.units_of_work
        ctx = context(tenant)
        with command_context(ctx):
            async with units(tenant, ctx, {}) as first, units(tenant, ctx, {}) as second:
                one = await first.get(Institution, institution)
                other = await second.get(Institution, institution)
                one.rename("Nama Pertama")
                other.rename("Nama Kedua")
                position = await first.commit(None)
                with pytest.raises(ConcurrentWrite):
                    await second.commit(None)
                assert await second.head() == position

            key = f"key-{secrets.token_hex(4)}"
            record = IdempotencyRecord(key, "fingerprint", b'{"id": 1}')
            async with units(tenant, ctx, {}) as first, units(tenant, ctx, {}) as second:
                (await first.get(Institution, institution)).rename("Nama Ketiga")
                (await second.get(Institution, institution)).suspend()
                await first.commit(record)
                # Another aggregate version is free, but the key is not: its events roll back.
                with pytest.raises(ConcurrentWrite):
                    await second.commit(record)
                assert await second.find_idempotency_record(key) == record
                assert await second.find_idempotency_record("never-used") is None

            async with units(tenant, ctx, {}) as uow:
                found = await uow.get(Institution, institution)
                assert (found.name, found.status) == ("Nama Ketiga", "active")
                # A command that changes nothing still records its key, and nothing else.
                head = await uow.head()
                quiet = IdempotencyRecord(f"quiet-{secrets.token_hex(4)}", "f", b"{}")
                assert await uow.commit(quiet) is None
                assert await uow.find_idempotency_record(quiet.key) == quiet
                assert await uow.head() == head


async def test_the_log_functions_are_bound_by_row_level_security(own: Settings) -> None:
    async with running("registry", own) as runtime:
        institution = await register_institution_in(runtime, "94", "LKSA Rahasia")
        conn = await asyncpg.connect(runtime.app_database_url)
        try:
            # Naming another tenant than the schema's: nothing to see, nothing to write.
            assert (
                await conn.fetch(
                    "SELECT * FROM registry_t94.aggregate_events('51', $1)", institution
                )
                == []
            )
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchrow(
                    "SELECT * FROM registry_t94.append_events('51', $1, $2, $3, $4, $5, $6, $7,"
                    " $8, $9, $10, $11)",
                    [1],
                    [uuid4()],
                    [1],
                    ["Institution.Registered"],
                    [b"{}"],
                    [None],
                    [None],
                    [None],
                    [],
                    [],
                    [],
                )
            assert (
                len(
                    await conn.fetch(
                        "SELECT * FROM registry_t94.aggregate_events('94', $1)", institution
                    )
                )
                == 1
            )
            # The tenant named for the call does not outlive it.
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in (
                "",
                None,
            )
        finally:
            await conn.close()


async def test_readers_in_other_processes_are_woken_after_the_commit(own: Settings) -> None:
    async with running("registry", own) as runtime:
        elsewhere = LogWatcher(runtime.app_database_url, runtime.logs.channel)
        changes = elsewhere.subscribe()
        await elsewhere.start()
        try:
            await register_institution_in(runtime, "95", "LKSA Bangun")
            assert await changes.wait(poll_interval=5.0) == {"95"}
        finally:
            await elsewhere.stop()


async def test_a_refused_command_in_a_shared_call_fails_alone(own: Settings) -> None:
    tenant = "91"
    async with running("registry", own) as runtime:
        contested = await register_institution_in(runtime, tenant, "LKSA Rebutan")
        others = [await register_institution_in(runtime, tenant, f"LKSA {n}") for n in range(2)]
        units = runtime.bus.units_of_work
        ctx = context(tenant)
        key = f"k-{secrets.token_hex(4)}"
        with command_context(ctx):
            async with units(tenant, ctx, {}) as uow:
                before = await uow.head()
            # As many units as the tests' event-store pool has connections.
            async with (
                units(tenant, ctx, {}) as winner,
                units(tenant, ctx, {}) as stale,
                units(tenant, ctx, {}) as first,
                units(tenant, ctx, {}) as second,
            ):
                (await winner.get(Institution, contested)).rename("Nama Menang")
                (await stale.get(Institution, contested)).rename("Nama Basi")
                for uow, institution in zip((first, second), others, strict=True):
                    (await uow.get(Institution, institution)).rename("Nama Baru")
                answers = await _together(
                    winner.commit(None),
                    first.commit(None),
                    stale.commit(IdempotencyRecord(f"stale-{key}", "f", b"{}")),
                    second.commit(IdempotencyRecord(key, "f", b"{}")),
                    settings=own,
                    tenant=tenant,
                )
            async with units(tenant, ctx, {}) as uow:
                assert (await uow.get(Institution, contested)).name == "Nama Menang"
                for institution in others:
                    assert (await uow.get(Institution, institution)).name == "Nama Baru"
                assert await uow.find_idempotency_record(key) is not None
                # The refused command's key went with it: a retry can still go through.
                assert await uow.find_idempotency_record(f"stale-{key}") is None
    assert isinstance(answers[2], ConcurrentWrite)
    positions = [a for a in answers if not isinstance(a, BaseException)]
    assert len(positions) == 3
    assert all(isinstance(p, int) for p in positions)
    # The first went alone; the two after it, and the refused one, shared one call: one
    # transaction, in which the refused command wrote nothing.
    assert len(await _transactions(own, tenant, before)) == 2


async def test_one_key_or_one_version_twice_in_a_line_goes_through_once(own: Settings) -> None:
    tenant = "92"
    async with running("registry", own) as runtime:
        institution = await register_institution_in(runtime, tenant, "LKSA Kembar")
        elsewhere = await register_institution_in(runtime, tenant, "LKSA Lain")

        async def rename(target: UUID, name: str, key: str | None = None) -> bool:
            """A rename; True if it was a replay of an earlier answer."""
            command = RenameInstitution(institution_id=target, name=name)
            outcome = await runtime.bus.execute(
                command, context(tenant), idempotency_key=key, request_fingerprint="same body"
            )
            return outcome.replayed

        # A retry arriving with its first attempt (behind a command that goes first, alone):
        # one applies, the other replays its answer.
        key = f"twice-{secrets.token_hex(4)}"
        retried = await _together(
            rename(elsewhere, "Nama Lain"),
            rename(institution, "Nama Ulang", key),
            rename(institution, "Nama Ulang", key),
            settings=own,
            tenant=tenant,
        )
        # Two renames of one version arriving together: one applies, the other is a 409.
        raced = await _together(
            rename(elsewhere, "Nama Lain Lagi"),
            rename(institution, "Nama Kesatu"),
            rename(institution, "Nama Kedua"),
            settings=own,
            tenant=tenant,
        )
        async with runtime.bus.units_of_work(tenant, context(tenant), {}) as uow:
            found = await uow.get(Institution, institution)
    assert retried == [False, False, True]
    assert raced[0] is False
    assert sorted(type(a).__name__ for a in raced[1:]) == ["Conflict", "bool"]
    # Registered, renamed once by the retried command, once by the race's winner.
    assert found.version == 3
    assert found.name in {"Nama Kesatu", "Nama Kedua"}


async def test_a_council_consulted_from_a_cache_is_checked_when_the_command_commits(
    own: Settings,
) -> None:
    # Registering an institution consults its councils without changing them; each process
    # keeps what it consulted (`shared.eventstore.record_cache`). Another process changing a
    # council must neither let a registration through on what this one kept, nor refuse one.
    tenant = "73"
    async with running("registry", own) as first, running("registry", own) as second:
        pdm = accepted(
            await run_command(
                second, tenant, OpenUnit(kind=UnitKind.PDM, code="7371", name="PDM Uji Cache")
            )
        ).id
        accepted(await run_command(first, tenant, _registration("LKSA Satu", "7371")))
        # The other process closes the PDM: `first` still keeps it open.
        accepted(await run_command(second, tenant, CloseUnit(unit_id=pdm, reason="digabung")))
        async with first.db.acquire() as conn:
            head = await first.logs.head(conn, tenant)
        with pytest.raises(RuleBroken) as refused:
            await run_command(first, tenant, _registration("LKSA Dua", "7371"))
        assert refused.value.field == "pdm"
        async with first.db.acquire() as conn:
            assert await first.logs.head(conn, tenant) == head

        # The other way round: `first` looked for a branch not yet opened, and keeps that.
        accepted(
            await run_command(
                second, tenant, OpenUnit(kind=UnitKind.PDM, code="7372", name="PDM Lain")
            )
        )
        with pytest.raises(RuleBroken):
            await run_command(first, tenant, _registration("LKSA Tiga", "7372", "737201"))
        accepted(
            await run_command(
                second, tenant, OpenUnit(kind=UnitKind.PCM, code="737201", name="PCM Baru")
            )
        )
        registered = accepted(
            await run_command(first, tenant, _registration("LKSA Tiga", "7372", "737201"))
        )
        async with first.bus.units_of_work(tenant, context(tenant), {}) as uow:
            assert (await uow.get(Institution, registered.id)).unit == "737201"


async def test_a_command_that_read_a_record_changed_since_writes_nothing(own: Settings) -> None:
    tenant = "74"
    async with running("registry", own) as runtime:
        council = accepted(
            await run_command(
                runtime, tenant, OpenUnit(kind=UnitKind.PDM, code="7471", name="PDM Baca")
            )
        ).id
        units = runtime.bus.units_of_work
        ctx = context(tenant)
        with command_context(ctx):
            async with units(tenant, ctx, {}) as uow:
                before = await uow.head() or 0
            async with units(tenant, ctx, {}) as closing, units(tenant, ctx, {}) as reading:
                # One command consults the council, another closes it and commits first.
                assert await reading.consult(OrganisationUnit, council) is not None
                (await closing.get(OrganisationUnit, council)).close()
                await closing.commit(None)
                reading.add(_lksa(tenant, "7471"))
                with pytest.raises(StaleRead):
                    await reading.commit(IdempotencyRecord("read-old", "f", b"{}"))
            # In one shared call: a command reading a record that another command of the
            # call creates is stale too.
            async with (
                units(tenant, ctx, {}) as ahead,
                units(tenant, ctx, {}) as opening,
                units(tenant, ctx, {}) as reading_new,
            ):
                assert (
                    await reading_new.consult(OrganisationUnit, unit_id(UnitKind.PDM, "7472"))
                    is None
                )
                ahead.add(_lksa(tenant, "7473"))
                opening.add(
                    OrganisationUnit.open(
                        tenant=tenant, kind=UnitKind.PDM, code="7472", name="PDM Baru", parent=None
                    )
                )
                reading_new.add(_lksa(tenant, "7472"))
                answers = await _together(
                    ahead.commit(None),
                    opening.commit(None),
                    reading_new.commit(None),
                    settings=own,
                    tenant=tenant,
                )
            async with units(tenant, ctx, {}) as uow:
                assert await uow.find_idempotency_record("read-old") is None
                # The close, the institution ahead and the opening: nothing of the two
                # stale commands.
                assert await uow.head() == before + 3
            assert len(await _transactions(own, tenant, before)) == 3
    assert isinstance(answers[2], StaleRead)
    assert all(isinstance(a, int) for a in answers[:2])


def _registration(name: str, pdm: str, unit: str | None = None) -> RegisterInstitution:
    return RegisterInstitution(name=name, kind=InstitutionType.LKSA, pdm=pdm, unit=unit)


def _lksa(tenant: str, pdm: str) -> Institution:
    return Institution.register(
        tenant=tenant,
        name="LKSA Basi",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm=pdm,
        address=None,
        unit=None,
    )


async def test_a_log_is_read_through_its_indexes_also_after_an_upgrade(own: Settings) -> None:
    # Row-level security binds each log to its tenant. Written as the comparison itself
    # (the policy before `log_tenant_is`), the planner guessed it held for 0.5% of rows and
    # found a log's last event by reading and sorting the whole table, on every append.
    tenant = "75"
    schema = tenant_schema("registry", tenant)
    table = f"{schema}.{events_table('registry')}"
    owner = await asyncpg.connect(own.database_url)
    try:
        async with running("registry", own) as runtime:
            for n in range(120):
                await register_institution_in(runtime, tenant, f"LKSA Indeks {n}")
            app_url = runtime.app_database_url
        await owner.execute(f"ANALYZE {table}")
        for policy, clause in (("tenant_read", "USING"), ("tenant_append", "WITH CHECK")):
            await owner.execute(
                f"ALTER POLICY {policy} ON {table} "
                f"{clause} (current_setting('app.tenant_id', true) = '{tenant}')"
            )
        assert "Sort" in await _plan_of_last_event(app_url, table, tenant)
        # The next start rewrites the old policies.
        async with running("registry", own) as runtime:
            plan = await _plan_of_last_event(runtime.app_database_url, table, tenant)
            assert "Index" in plan, plan
            assert "Sort" not in plan, plan
            # Still bound to the tenant.
            conn = await asyncpg.connect(runtime.app_database_url)
            try:
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
                await conn.execute("SELECT set_config('app.tenant_id', $1, false)", tenant)
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == (
                    await owner.fetchval(f"SELECT count(*) FROM {table}")
                )
            finally:
                await conn.close()
    finally:
        await owner.close()


async def _plan_of_last_event(app_url: str, table: str, tenant: str) -> str:
    conn = await asyncpg.connect(app_url)
    try:
        await conn.execute("SELECT set_config('app.tenant_id', $1, false)", tenant)
        rows = await conn.fetch(
            f"EXPLAIN SELECT notification_id FROM {table} ORDER BY notification_id DESC LIMIT 1"
        )
        return "\n".join(r[0] for r in rows)
    finally:
        await conn.close()
