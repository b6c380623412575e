"""The command path's append (one call to the tenant schema's `append_events`, on asyncpg):
a follower reading a log while many commands append to it sees every position exactly once,
in order; a lost race and a reused Idempotency-Key are refused as such; row-level security
still binds the call; readers are woken after the commit, in this process and in others."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest

from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import Institution, InstitutionType
from shared.devstack.stack import DevStack
from shared.eventstore.context import command_context
from shared.eventstore.logs import LogWatcher
from shared.runtime import ServiceRuntime
from shared.service_layer.unit_of_work import ConcurrentWrite, IdempotencyRecord
from shared.settings import Settings
from shared.tenancy import province_codes
from tests.helpers import context, fresh_database, own_streams, register_institution_in, running

WRITERS = 32
COMMANDS_PER_WRITER = 12


@pytest.fixture(scope="module")
async def own(backing: DevStack, settings: Settings) -> AsyncIterator[Settings]:
    """A database and NATS prefix of this module's own: it writes to every tenant's log,
    where other modules expect positions of their own."""
    async with (
        fresh_database(backing.database_url, "append") as url,
        own_streams(backing.nats_url, "append") as prefix,
    ):
        yield settings.replace(database_url=url, nats_prefix=prefix)


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

        async def write(writer: int) -> list[tuple[str, int]]:
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
                positions.append((tenant, outcome.position))
            return positions

        try:
            written = [p for ps in await asyncio.gather(*map(write, range(WRITERS))) for p in ps]
        finally:
            done.set()
        seen = await follower

        async with runtime.db.acquire() as conn:
            final = {
                t: [
                    e.position
                    for e in await runtime.logs.read(conn, t, after=before[t], limit=100_000)
                ]
                for t in tenants
            }
    assert len(written) == WRITERS * COMMANDS_PER_WRITER
    for tenant in tenants:
        positions = [p for p in seen[tenant] if p > before[tenant]]
        # In order, each once...
        assert positions == sorted(set(positions)), tenant
        # ...and nothing the follower had already passed turned up later.
        assert positions == final[tenant], tenant
        assert {p for t, p in written if t == tenant} <= set(positions), tenant


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
                await conn.fetchval(
                    "SELECT registry_t94.append_events('51', $1, $2, $3, $4)",
                    [uuid4()],
                    [1],
                    ["Institution.Registered"],
                    [b"{}"],
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
