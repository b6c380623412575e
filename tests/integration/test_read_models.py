"""Read models on real PostgreSQL: tenant isolation by row-level security, projection rows and
positions committed together, rebuilds from the event logs, and bounded connections when all
38 provinces write at once.

Tenants 51, 52 and 53 belong to this module (the connection test also writes one institution
in every province), so other tests' data never changes what is asserted here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from functools import singledispatchmethod
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from asyncpg.exceptions import InsufficientPrivilegeError

from services.cases.application.receive_complaint import ReceiveComplaint
from services.cases.domain.complaint import Channel
from services.hr.application.register_worker import RegisterWorker
from services.registry.application.close_institution import CloseInstitution
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.application.suspend_institution import SuspendInstitution
from services.registry.domain.institution import Institution, InstitutionType, Owner
from shared.db.pool import DbConnection, tenant_transaction
from shared.db.roles import APP_ROLE
from shared.devstack.stack import DevStack
from shared.eventstore.context import CommandContext
from shared.eventstore.envelope import EventEnvelope
from shared.projections.runner import ProjectionRunner
from shared.resilience.stalls import request_retry
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Command
from shared.settings import Settings
from shared.tenancy import province_codes
from tests.helpers import accepted, own_settings, running

pytestmark = pytest.mark.timeout(240)

SERVICE_SCHEMAS = ("registry", "cases", "hr")
# The kernel's own bookkeeping: positions, message ids and the logs' signed checkpoints
# (hashes, read across tenants by the signer), not tenant data.
BOOKKEEPING_TABLES = {
    "chain_checkpoints",
    "relay_positions",
    "projection_positions",
    "consumer_positions",
    "processed_messages",
    "parked_messages",
    "stalls",
    "schema_migrations",
}
# What `enable_tenant_rls` (shared/db/sql/kernel.sql) declares on every read-model table:
# (name, permissive, command).
EXPECTED_POLICIES = {("tenant_isolation", True, b"*"), ("actor_scope", False, b"r")}
# The columns that place each read model's rows in a PDM or an institution.
SCOPE_COLUMNS = {
    "registry.institutions": ("pdm", "id"),
    "hr.workers": ("pdm",),
    "cases.complaints": ("pdm", "institution_id"),
    "cases.institution_directory": ("pdm", "institution_id"),
}
# Connections beyond the two pools the connection test tolerates: its own sampling
# connection and backends of closed connections PostgreSQL has not reaped yet.
CONNECTION_SLACK = 3


@dataclass
class Registry:
    runtime: ServiceRuntime


async def _pids(database_url: str) -> frozenset[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        return frozenset(r["pid"] for r in rows)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> AsyncIterator[Registry]:
    async with running("registry", settings) as runtime:
        yield Registry(runtime)


async def command(runtime: ServiceRuntime, tenant: str, command: Command) -> UUID:
    ctx = CommandContext(
        tenant=tenant,
        actor="read-model-tests",
        correlation_id=f"corr-{uuid4()}",
    )
    return accepted(await runtime.bus.execute(command, ctx)).id


async def register(runtime: ServiceRuntime, tenant: str, name: str) -> UUID:
    return await command(
        runtime,
        tenant,
        RegisterInstitution(
            name=name, kind=InstitutionType.LKSA, owner=Owner.MUHAMMADIYAH, pdm=f"{tenant}71"
        ),
    )


def hire(tenant: str) -> RegisterWorker:
    return RegisterWorker(
        full_name=f"Pekerja Sosial {tenant}", birth_date=date(1990, 5, 17), pdm=f"{tenant}71"
    )


async def tenant_ids(conn: DbConnection, table: str) -> set[str]:
    return {r["tenant_id"] for r in await conn.fetch(f"SELECT tenant_id FROM {table}")}


async def test_institutions_are_visible_only_inside_their_tenant(registry: Registry) -> None:
    runtime = registry.runtime
    bali = await register(runtime, "51", "Panti Asuhan Muhammadiyah Denpasar")
    ntb = await register(runtime, "52", "Panti Asuhan Aisyiyah Mataram")
    await runtime.projections.catch_up()

    async with runtime.db.acquire() as conn:
        # The pool runs as the application role, which the policies bind: no tenant, no rows.
        assert await conn.fetchval("SELECT current_user") == APP_ROLE
        assert await conn.fetch("SELECT * FROM registry.institutions") == []

    async with tenant_transaction(runtime.db, "51") as conn:
        rows = await conn.fetch("SELECT tenant_id, id FROM registry.institutions")
    assert {r["tenant_id"] for r in rows} == {"51"}
    assert bali in {r["id"] for r in rows}
    assert ntb not in {r["id"] for r in rows}

    async with tenant_transaction(runtime.db, "52") as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM registry.institutions WHERE id = $1", ntb)
            == 1
        )
        assert (
            await conn.fetchval("SELECT count(*) FROM registry.institutions WHERE id = $1", bali)
            == 0
        )

    # Writing another tenant's row from inside a tenant transaction is refused by PostgreSQL.
    with pytest.raises(InsufficientPrivilegeError, match="row-level security"):
        async with tenant_transaction(runtime.db, "51") as conn:
            await conn.execute(
                """INSERT INTO registry.institutions
                     (tenant_id, id, name, kind, owner, pdm, status, version,
                      registered_at, updated_at)
                   VALUES ('52', $1, 'Smuggled', 'lksa', 'muhammadiyah', '5271', 'active', 1,
                           now(), now())""",
                uuid4(),
            )
    # Nor can a tenant move one of its rows into another tenant.
    with pytest.raises(InsufficientPrivilegeError, match="row-level security"):
        async with tenant_transaction(runtime.db, "51") as conn:
            await conn.execute(
                "UPDATE registry.institutions SET tenant_id = '52' WHERE id = $1", bali
            )
    async with tenant_transaction(runtime.db, "51") as conn:
        assert (
            await conn.fetchval("SELECT tenant_id FROM registry.institutions WHERE id = $1", bali)
            == "51"
        )


async def test_every_read_model_table_is_guarded_by_row_level_security(
    registry: Registry, settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    runtime = registry.runtime
    for tenant in ("51", "52"):
        await register(runtime, tenant, f"Rumah Singgah Muhammadiyah {tenant}")
    await runtime.projections.catch_up()

    # hr and cases share the session database; they are stopped again before the connection
    # count below, which only accounts for the registry's pools.
    async with running("hr", settings) as hr, running("cases", settings) as cases:
        for tenant in ("51", "52"):
            await command(hr, tenant, hire(tenant))
            await command(
                cases,
                tenant,
                ReceiveComplaint(
                    channel=Channel.PHONE,
                    summary="Jadwal kunjungan keluarga dibatalkan tanpa pemberitahuan.",
                ),
            )
        await hr.projections.catch_up()
        await cases.projections.catch_up()
        # The directory is filled by cases' consumer of registry events; feed it straight
        # from the registry's logs (the same envelopes NATS would carry).
        directory = next(c for c in cases.consumers if c.source == "registry")
        for tenant in ("51", "52"):
            async with runtime.db.acquire() as conn:
                events: list[EventEnvelope] = await runtime.logs.read(
                    conn, tenant, after=0, limit=10_000
                )
            for event in events:
                await directory.apply(event)

    tables = [
        f"{r['table_schema']}.{r['table_name']}"
        for r in await owner.fetch(
            """SELECT c.table_schema, c.table_name
               FROM information_schema.columns c
               JOIN information_schema.tables t USING (table_schema, table_name)
               WHERE c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
                 AND c.table_schema = ANY($1::text[]) AND NOT (c.table_name = ANY($2::text[]))
               ORDER BY 1, 2""",
            list(SERVICE_SCHEMAS),
            sorted(BOOKKEEPING_TABLES),
        )
    ]
    known = {
        "registry.institutions",
        "hr.workers",
        "cases.complaints",
        "cases.institution_directory",
    }
    assert known <= set(tables), tables

    unguarded = [
        t
        for t in tables
        if not await owner.fetchval(
            "SELECT relrowsecurity FROM pg_class WHERE oid = $1::regclass", t
        )
    ]
    assert unguarded == [], f"read-model tables without row-level security: {unguarded}"
    without_policy = [
        t
        for t in tables
        if not await owner.fetchval(
            "SELECT count(*) FROM pg_policy WHERE polrelid = $1::regclass", t
        )
    ]
    assert without_policy == [], (
        f"RLS enabled but no tenant policy (nobody sees rows): {without_policy}"
    )
    # Exactly the two policies `enable_tenant_rls` declares: another permissive policy would
    # widen what a tenant sees, a missing restrictive one what a scoped reader sees.
    policies = {
        t: {
            (r["polname"], r["polpermissive"], r["polcmd"])
            for r in await owner.fetch(
                """SELECT polname, polpermissive, polcmd FROM pg_policy
                   WHERE polrelid = $1::regclass""",
                t,
            )
        }
        for t in tables
    }
    assert policies == {t: EXPECTED_POLICIES for t in tables}, policies
    # Each setting read once per statement, not per row (an InitPlan: 3.3 -> 1.2 ms for a
    # count of 10,000 rows); older declarations are rewritten so at start.
    read_per_row = await owner.fetch(
        """SELECT polrelid::regclass::text AS tbl, polname FROM pg_policy
           WHERE polrelid = ANY($1::regclass[])
             AND pg_get_expr(polqual, polrelid) NOT LIKE '%SELECT current_setting%'
             AND pg_get_expr(polqual, polrelid) NOT LIKE '%SELECT COALESCE(current_setting%'""",
        tables,
    )
    assert read_per_row == [], read_per_row
    scoped_by = {
        t: await owner.fetchval(
            """SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
               WHERE polrelid = $1::regclass AND polname = 'actor_scope'""",
            t,
        )
        for t in known
    }
    for table, columns in SCOPE_COLUMNS.items():
        for column in columns:
            assert (
                f"= {column})" in scoped_by[table] or f"= ({column})::text)" in scoped_by[table]
            ), (table, column, scoped_by[table])

    for table in tables:
        seen_by_owner = await tenant_ids(owner, table)
        if table in known:
            # Otherwise "no rows" below would prove nothing.
            assert {"51", "52"} <= seen_by_owner, (table, seen_by_owner)
        async with runtime.db.acquire() as conn:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        for tenant in ("51", "52"):
            async with tenant_transaction(runtime.db, tenant) as conn:
                visible = await tenant_ids(conn, table)
            if table in known:
                assert visible == {tenant}, (table, tenant, visible)
            else:
                assert visible <= {tenant}, (table, tenant, visible)

    # The role the pools use can never bypass the policies, whoever logs in.
    assert (
        await owner.fetchval(
            "SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = $1", APP_ROLE
        )
        is False
    )


async def test_a_new_read_model_table_is_guarded_by_one_helper_call(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    a, b, c = uuid4(), uuid4(), uuid4()

    async def visible(tenant: str | None, pdm: str = "", institution: str = "") -> set[UUID]:
        async with owner.transaction():
            await owner.execute(
                """SELECT set_config('app.tenant_id', $1, true),
                          set_config('app.scope_pdm', $2, true),
                          set_config('app.scope_institution', $3, true)""",
                tenant,
                pdm,
                institution,
            )
            return {r["id"] for r in await owner.fetch("SELECT id FROM registry.rls_probe")}

    async def insert(tenant: str, row_tenant: str) -> None:
        async with owner.transaction():
            await owner.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
            await owner.execute(
                "INSERT INTO registry.rls_probe VALUES ($1, $2, $3)", row_tenant, uuid4(), None
            )

    # Rolled back at the end: the schema stays as the migrations left it.
    probe = owner.transaction()
    await probe.start()
    try:
        await owner.execute(
            """CREATE TABLE registry.rls_probe (
                   tenant_id text NOT NULL, id uuid NOT NULL, pdm text,
                   PRIMARY KEY (tenant_id, id))"""
        )
        await owner.execute(
            "SELECT registry.enable_tenant_rls('registry.rls_probe', pdm_column => 'pdm')"
        )
        # The owner is not bound by the policies: it writes every tenant's rows.
        await owner.executemany(
            "INSERT INTO registry.rls_probe VALUES ($1, $2, $3)",
            [("51", a, "5171"), ("51", b, "5172"), ("52", c, "5271")],
        )
        await owner.execute(f"GRANT SELECT, INSERT ON registry.rls_probe TO {APP_ROLE}")
        declared = {
            (r["polname"], r["polpermissive"], r["polcmd"])
            for r in await owner.fetch(
                """SELECT polname, polpermissive, polcmd FROM pg_policy
                   WHERE polrelid = 'registry.rls_probe'::regclass"""
            )
        }
        assert declared == EXPECTED_POLICIES

        await owner.execute(f"SET LOCAL ROLE {APP_ROLE}")
        assert await visible(None) == set()
        assert await visible("51") == {a, b}
        assert await visible("52") == {c}
        assert await visible("51", pdm="5171") == {a}
        # No institution column: institution staff see none of it.
        assert await visible("51", institution=str(uuid4())) == set()
        await insert("51", "51")
        with pytest.raises(InsufficientPrivilegeError):
            await insert("51", "52")
    finally:
        await probe.rollback()
    assert await owner.fetchval("SELECT to_regclass('registry.rls_probe')") is None


async def test_projection_position_is_the_log_head_and_catch_up_is_idempotent(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    runtime = registry.runtime
    institution = await register(runtime, "51", "Panti Jompo Aisyiyah Tabanan")
    await command(
        runtime,
        "51",
        RenameInstitution(institution_id=institution, name="Panti Wreda Aisyiyah Tabanan"),
    )
    await runtime.projections.catch_up()

    async with runtime.db.acquire() as conn:
        head = await runtime.logs.head(conn, "51")
    position = await owner.fetchval(
        """SELECT position FROM registry.projection_positions
           WHERE projection = 'institutions' AND tenant_id = '51'"""
    )
    assert head > 0
    assert position == head
    assert runtime.projections.lag["institutions"] == 0

    snapshot = "SELECT * FROM registry.institutions WHERE tenant_id = '51' ORDER BY id"
    before = [dict(r) for r in await owner.fetch(snapshot)]
    assert any(r["id"] == institution and r["version"] == 2 for r in before)

    assert await runtime.projections.catch_up() == 0
    assert [dict(r) for r in await owner.fetch(snapshot)] == before
    assert (
        await owner.fetchval(
            """SELECT position FROM registry.projection_positions
               WHERE projection = 'institutions' AND tenant_id = '51'"""
        )
        == head
    )


@asynccontextmanager
async def probe_table(owner: asyncpg.Connection[Any]) -> AsyncIterator[None]:
    """A table of the probe projection's own, outside the service schemas (so the RLS
    inventory never sees it), removed afterwards with the probe's positions."""
    await owner.execute(
        f"""DROP SCHEMA IF EXISTS probe_atomicity CASCADE;
            CREATE SCHEMA probe_atomicity;
            CREATE TABLE probe_atomicity.seen (tenant_id text NOT NULL, position bigint NOT NULL);
            GRANT USAGE ON SCHEMA probe_atomicity TO {APP_ROLE};
            GRANT SELECT, INSERT, DELETE ON probe_atomicity.seen TO {APP_ROLE};"""
    )
    try:
        yield
    finally:
        await owner.execute(
            "DELETE FROM registry.projection_positions WHERE projection = $1", _Probe.name
        )
        await owner.execute(
            "DELETE FROM registry.stalls WHERE follower = $1", f"projection:{_Probe.name}"
        )
        await owner.execute("DROP SCHEMA IF EXISTS probe_atomicity CASCADE")


class _Probe:
    """Records each event it sees in its own table and, when asked to, fails on one event
    of one tenant, after writing its row."""

    name = "probe-atomicity"
    tables = ("probe_atomicity.seen",)

    def __init__(self, fail_at: tuple[str, int] | None, times: int | None = None) -> None:
        self.fail_at = fail_at
        # How many times to fail there (None: always), for a failure that does not recur.
        self.times = times

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Nothing but the registry's events is in its log."""

    @on.register
    async def _(
        self, event: Institution.Event, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            "INSERT INTO probe_atomicity.seen (tenant_id, position) VALUES ($1, $2)",
            envelope.tenant,
            envelope.position,
        )
        if (envelope.tenant, envelope.position) == self.fail_at and self.times != 0:
            if self.times is not None:
                self.times -= 1
            raise RuntimeError("projection bug")


async def test_failing_event_stalls_its_tenant_only_and_rows_commit_with_the_position(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    runtime = registry.runtime
    await register(runtime, "53", "Panti Asuhan Muhammadiyah Kupang")
    await register(runtime, "53", "Panti Asuhan Aisyiyah Ende")
    async with runtime.db.acquire() as conn:
        log_53 = [e.position for e in await runtime.logs.read(conn, "53", after=0, limit=10_000)]
    bad = log_53[-1]
    # Outside the service schemas, so the RLS inventory above never sees this table.
    async with probe_table(owner):
        failing = ProjectionRunner(
            schema="registry", pool=runtime.db, logs=runtime.logs, projections=[_Probe(("53", bad))]
        )
        await failing.catch_up()

        async def seen(tenant: str) -> list[int]:
            rows = await owner.fetch(
                "SELECT position FROM probe_atomicity.seen WHERE tenant_id = $1 ORDER BY 1",
                tenant,
            )
            return [r["position"] for r in rows]

        async def positions() -> dict[str, int]:
            rows = await owner.fetch(
                """SELECT tenant_id, position FROM registry.projection_positions
                   WHERE projection = $1""",
                _Probe.name,
            )
            return {r["tenant_id"]: r["position"] for r in rows}

        async with runtime.db.acquire() as conn:
            heads = await runtime.logs.heads(conn)
        # Every event before the bad one is applied once, with its position; the bad one's
        # row was rolled back with its transaction; the tenant stops there.
        assert await seen("53") == log_53[:-1]
        assert (await positions())["53"] == log_53[-2]
        stall = (await failing.stalls[_Probe.name].all())["53"]
        assert (stall.position, stall.reason) == (bad, "RuntimeError: projection bug")
        assert failing.lag[_Probe.name] == 1
        readiness = await runtime.ready()
        assert readiness.status == "degraded"
        assert [(s.follower, s.tenant) for s in readiness.stalls] == [
            (f"projection:{_Probe.name}", "53")
        ]
        # Every other tenant, before and after 53 in the walk, is complete.
        for tenant, head in heads.items():
            if tenant != "53" and head:
                assert (await positions())[tenant] == head, tenant

        # The fix: the stall is retried (here at once) and the tenant completes, once each.
        assert await request_retry(owner, "registry", "53") == 1
        healthy = ProjectionRunner(
            schema="registry", pool=runtime.db, logs=runtime.logs, projections=[_Probe(None)]
        )
        await healthy.catch_up()
        assert await seen("53") == log_53
        assert (await positions())["53"] == heads["53"]
        assert await healthy.stalls[_Probe.name].all() == {}
        assert healthy.lag[_Probe.name] == 0


async def test_a_closed_institution_reads_closed(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    runtime = registry.runtime
    closing = await register(runtime, "52", "Rumah Singgah Muhammadiyah Labuan Bajo")
    await command(runtime, "52", CloseInstitution(institution_id=closing, reason="dibubarkan"))
    await runtime.projections.catch_up(["52"])
    row = await owner.fetchrow(
        "SELECT status, version FROM registry.institutions WHERE id = $1", closing
    )
    assert row is not None
    assert dict(row) == {"status": "closed", "version": 2}


async def test_rebuild_restores_rows_from_the_event_logs(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    runtime = registry.runtime
    renamed = await register(runtime, "51", "PSKM Muhammadiyah Badung")
    await command(
        runtime,
        "51",
        RenameInstitution(institution_id=renamed, name="PSKM Muhammadiyah Kabupaten Badung"),
    )
    await command(
        runtime,
        "51",
        SuspendInstitution(institution_id=renamed, reason="laporan keuangan tidak diserahkan"),
    )
    deleted = await register(runtime, "52", "PAKM Aisyiyah Bima")
    await runtime.projections.catch_up()

    snapshot = "SELECT * FROM registry.institutions WHERE id = ANY($1::uuid[]) ORDER BY id"
    ids = [renamed, deleted]
    before = [dict(r) for r in await owner.fetch(snapshot, ids)]
    assert len(before) == 2
    expected = {r["id"]: r for r in before}
    assert expected[renamed]["name"] == "PSKM Muhammadiyah Kabupaten Badung"
    assert expected[renamed]["status"] == "suspended"
    assert expected[renamed]["version"] == 3
    assert expected[deleted]["version"] == 1

    # A read model gone bad: one row garbled (ahead of its log, so catch-up would never fix
    # it), one row lost.
    await owner.execute(
        """UPDATE registry.institutions SET name = 'garbled', status = 'active', version = 99
           WHERE id = $1""",
        renamed,
    )
    await owner.execute("DELETE FROM registry.institutions WHERE id = $1", deleted)
    assert await runtime.projections.catch_up() == 0

    applied = await runtime.projections.rebuild(owner, "institutions")

    assert applied >= 4
    assert [dict(r) for r in await owner.fetch(snapshot, ids)] == before
    async with runtime.db.acquire() as conn:
        heads = await runtime.logs.heads(conn)
    positions = {
        r["tenant_id"]: r["position"]
        for r in await owner.fetch(
            """SELECT tenant_id, position FROM registry.projection_positions
               WHERE projection = 'institutions'"""
        )
    }
    assert positions == {t: h for t, h in heads.items() if h > 0}


async def test_a_failure_that_does_not_recur_stalls_nothing(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    """A deadlock, say: the batch fails once, its events are applied one at a time past the
    point of failure, then in batches again; nothing is stalled, each event counts once."""
    runtime = registry.runtime
    for i in range(3):
        await register(runtime, "53", f"Panti Asuhan Muhammadiyah Alor {i}")
    async with runtime.db.acquire() as conn:
        log_53 = [e.position for e in await runtime.logs.read(conn, "53", after=0, limit=10_000)]
        heads = await runtime.logs.heads(conn)
    async with probe_table(owner):
        once = ProjectionRunner(
            schema="registry",
            pool=runtime.db,
            logs=runtime.logs,
            projections=[_Probe(("53", log_53[-2]), times=1)],
        )
        await once.catch_up()
        rows = await owner.fetch(
            "SELECT position FROM probe_atomicity.seen WHERE tenant_id = '53' ORDER BY 1"
        )
        assert [r["position"] for r in rows] == log_53
        assert await once.stalls[_Probe.name].all() == {}
        assert once.lag[_Probe.name] == 0
        assert heads["53"] == log_53[-1]


async def test_an_event_postgres_text_cannot_hold_is_projected_and_rebuilt(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    """An event recorded before the edge refused NUL stays in the log forever: read models
    store it (NUL shown as U+FFFD) and a rebuild gets past it, for every tenant."""
    runtime = registry.runtime
    institution = await register(runtime, "52", "Poison \x00 NUL")
    await runtime.projections.catch_up()
    name = await owner.fetchval("SELECT name FROM registry.institutions WHERE id = $1", institution)
    assert name == "Poison \ufffd NUL"
    async with runtime.db.acquire() as conn:
        (event,) = [
            e
            for e in await runtime.logs.read(conn, "52", after=0, limit=10_000)
            if e.aggregate_id == institution
        ]
    assert event.data["name"] == "Poison \x00 NUL"  # the log and the feed keep what was said

    assert await runtime.projections.rebuild(owner, "institutions") > 0
    assert await owner.fetchval(
        "SELECT name FROM registry.institutions WHERE id = $1", institution
    ) == ("Poison \ufffd NUL")
    assert await runtime.projections.stalls["institutions"].all() == {}
    readiness = await runtime.ready()
    assert readiness.status == "ready", readiness


async def test_connections_stay_bounded_when_all_provinces_write_at_once(
    backing: DevStack, settings: Settings
) -> None:
    """In a database of its own: it registers an institution in every province, where the
    other modules count the institutions of theirs."""
    async with own_settings(backing.database_url, backing.nats_url, settings, "provinces") as own:
        assert own.database_url is not None
        baseline = await _pids(own.database_url)
        owner = await asyncpg.connect(own.database_url)
        try:
            async with running("registry", own) as runtime:
                await _write_in_every_province(runtime, own, owner, baseline)
        finally:
            await owner.close()


async def _write_in_every_province(
    runtime: ServiceRuntime,
    settings: Settings,
    owner: asyncpg.Connection[Any],
    baseline: frozenset[int],
) -> None:
    pool = runtime.event_store
    es_max = pool.get_max_size()
    rm_max = runtime.db.get_max_size()
    assert es_max == settings.eventstore_pool_size + settings.eventstore_pool_overflow
    assert rm_max == settings.readmodel_pool_size
    me = await owner.fetchval("SELECT pg_backend_pid()")

    peak = {"event_store": 0, "read_models": 0, "ours": 0, "database": 0}
    done = asyncio.Event()

    async def sample() -> None:
        while True:
            peak["event_store"] = max(peak["event_store"], pool.get_size())
            peak["read_models"] = max(peak["read_models"], runtime.db.get_size())
            pids = {
                r["pid"]
                for r in await owner.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                )
            }
            peak["database"] = max(peak["database"], len(pids))
            # The registry runtime: everything that was not there before it started, minus
            # the sampling connection itself.
            peak["ours"] = max(peak["ours"], len(pids - baseline - {me}))
            if done.is_set():
                return
            await asyncio.sleep(0.01)

    provinces = sorted(province_codes())
    assert len(provinces) == 38

    async def read_own_rows(tenant: str) -> int:
        async with tenant_transaction(runtime.db, tenant) as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM registry.institutions WHERE pdm = $1", f"{tenant}71"
            )
            return count

    sampler = asyncio.create_task(sample())
    try:
        ids = await asyncio.gather(
            *(register(runtime, t, f"Uji Koneksi Bersamaan {t}") for t in provinces)
        )
        await runtime.projections.catch_up()
        counts = await asyncio.gather(*(read_own_rows(t) for t in provinces))
    finally:
        done.set()
        await sampler

    print(
        "\nconnections with 38 provinces writing at once: "
        f"event-store pool peak {peak['event_store']}/{es_max}, "
        f"read-model pool peak {peak['read_models']}/{rm_max}, "
        f"registry runtime backends peak {peak['ours']} "
        f"(bound {es_max + rm_max + CONNECTION_SLACK}), "
        f"all backends of its database peak {peak['database']}"
    )
    assert len(set(ids)) == 38
    assert all(c >= 1 for c in counts)
    assert peak["event_store"] <= es_max
    assert peak["read_models"] <= rm_max
    assert peak["ours"] <= es_max + rm_max + CONNECTION_SLACK


async def test_replicas_following_the_same_log_apply_each_event_once(
    registry: Registry, owner: asyncpg.Connection[Any]
) -> None:
    """Two instances of a service (scaled out) run the same projection concurrently."""
    runtime = registry.runtime
    for i in range(30):
        await register(runtime, "53", f"LKSA Replika {i}")
    async with probe_table(owner):
        replicas = [
            ProjectionRunner(
                schema="registry",
                pool=runtime.db,
                logs=runtime.logs,
                projections=[_Probe(None)],
                batch_size=7,
            )
            for _ in range(3)
        ]
        await asyncio.gather(*(r.catch_up(["53"]) for r in replicas))
        async with runtime.db.acquire() as conn:
            log_53 = [
                e.position for e in await runtime.logs.read(conn, "53", after=0, limit=10_000)
            ]
        seen = [
            r["position"]
            for r in await owner.fetch(
                "SELECT position FROM probe_atomicity.seen WHERE tenant_id = '53' ORDER BY 1"
            )
        ]
        assert seen == log_53
