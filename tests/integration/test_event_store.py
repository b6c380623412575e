"""The write side on real PostgreSQL: what is stored (stable names, JSON, metadata), what is
read back (typed fields, past versions, upcast old events) and one separate log per tenant.

Tenants 51, 52 and 53 belong to the read-model and event-store modules.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import anyio.to_thread
import asyncpg
import pytest

from services.hr.application.register_worker import RegisterWorker
from services.hr.domain.social_worker import SocialWorker
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.application.suspend_institution import SuspendInstitution
from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from shared.audit.chain import install_chain
from shared.domain.aggregate import AggregateRoot, event
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.context import CommandContext, command_context
from shared.eventstore.functions import install_log_functions
from shared.eventstore.stores import EventStorePool, TenantApplication, TenantStores
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Command
from shared.settings import Settings
from tests.helpers import accepted, running

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("registry", settings) as runtime:
        yield runtime


@pytest.fixture(scope="module")
async def hr(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("hr", settings) as runtime:
        yield runtime


def context(tenant: str, *, reason: str | None = None) -> CommandContext:
    return CommandContext(
        tenant=tenant,
        actor=f"officer-{tenant}",
        correlation_id=f"corr-{uuid4()}",
        reason=reason,
    )


async def command(
    runtime: ServiceRuntime, ctx: CommandContext, command: Command, **options: Any
) -> UUID:
    return accepted(await runtime.bus.execute(command, ctx, **options)).id


def registration(tenant: str, name: str) -> RegisterInstitution:
    return RegisterInstitution(
        name=name,
        kind=InstitutionType.SENIOR_CARE,
        owner=Owner.AISYIYAH,
        pdm=f"{tenant}71",
        address="Jl. KH Ahmad Dahlan 1",
    )


async def register(runtime: ServiceRuntime, tenant: str, name: str) -> UUID:
    return await command(runtime, context(tenant), registration(tenant, name))


async def load(runtime: ServiceRuntime, tenant: str, aggregate_id: UUID) -> object:
    return await get_from(runtime.stores.get(tenant), aggregate_id)


async def get_from(app: TenantApplication, aggregate_id: UUID) -> Any:
    def get() -> Any:
        return app.repository.get(aggregate_id)

    return await anyio.to_thread.run_sync(get)


async def stored_rows(
    owner: asyncpg.Connection[Any], tenant: str, aggregate_id: UUID
) -> list[asyncpg.Record]:
    return await owner.fetch(
        f"""SELECT originator_version, topic, state FROM registry_t{tenant}.registry_events
            WHERE originator_id = $1 ORDER BY originator_version""",
        aggregate_id,
    )


async def test_stored_events_have_stable_names_and_json_with_metadata(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    registered = context("51")
    institution = await command(
        registry, registered, registration("51", "Panti Wreda Aisyiyah Gianyar")
    )
    suspended = context("51", reason="izin operasional kedaluwarsa")
    await command(
        registry,
        suspended,
        SuspendInstitution(institution_id=institution, reason="izin operasional kedaluwarsa"),
        expected_versions={institution: 1},
    )

    rows = await stored_rows(owner, "51", institution)
    assert [r["topic"] for r in rows] == ["Institution.Registered", "Institution.Suspended"]
    for row in rows:
        text = bytes(row["state"]).decode("utf-8")
        # No Python module path anywhere: moving a module must never break replay.
        for module_path in ("services.", "shared.", "__main__"):
            assert module_path not in text
        assert "services." not in row["topic"]
    first = json.loads(bytes(rows[0]["state"]))
    assert first["v"] == 2  # Institution.Registered v2 (its branch unit)
    assert first["data"]["originator_topic"] == "Institution"
    assert first["data"]["name"] == "Panti Wreda Aisyiyah Gianyar"
    assert first["data"]["kind"] == "senior_care"
    assert first["meta"]["actor"] == "officer-51"
    assert first["meta"]["tenant"] == "51"
    assert first["meta"]["correlation_id"] == registered.correlation_id
    assert first["meta"]["command_id"] == str(registered.command_id)
    assert first["meta"]["reason"] is None

    second = json.loads(bytes(rows[1]["state"]))
    assert second["meta"]["reason"] == "izin operasional kedaluwarsa"
    assert second["meta"]["correlation_id"] == suspended.correlation_id
    assert "originator_topic" not in second["data"]
    # Only domain data in `data`; ids and versions live in their own columns.
    assert "originator_id" not in second["data"]
    assert "originator_version" not in second["data"]


async def test_reloaded_aggregates_have_typed_fields(
    registry: ServiceRuntime, hr: ServiceRuntime
) -> None:
    worker_id = await command(
        hr,
        context("52"),
        RegisterWorker(full_name="Siti Aminah", birth_date=date(1988, 2, 29), pdm="5271"),
    )
    worker = await load(hr, "52", worker_id)
    assert isinstance(worker, SocialWorker)
    assert type(worker.birth_date) is date
    assert worker.birth_date == date(1988, 2, 29)
    assert worker.pdm == "5271"
    assert worker.integrity_pact_signed_on is None
    assert isinstance(worker.id, UUID)
    assert isinstance(worker.created_on, datetime)

    institution_id = await register(registry, "52", "Panti Asuhan Muhammadiyah Sumbawa")
    institution = await load(registry, "52", institution_id)
    assert isinstance(institution, Institution)
    assert institution.kind is InstitutionType.SENIOR_CARE
    assert institution.owner is Owner.AISYIYAH
    assert institution.status is InstitutionStatus.ACTIVE
    assert institution.id == institution_id
    # The aggregate keeps working after the reload: its rules see real enum members.
    institution.suspend()
    assert institution.version == 2
    assert institution.pending_events[-1].__class__.__name__ == "Suspended"


async def test_an_earlier_version_of_an_aggregate_can_be_read(registry: ServiceRuntime) -> None:
    institution_id = await register(registry, "51", "Rumah Singgah Muhammadiyah Buleleng")
    await command(
        registry,
        context("51"),
        RenameInstitution(institution_id=institution_id, name="Rumah Singgah Anak Buleleng"),
        expected_versions={institution_id: 1},
    )
    app = registry.stores.get("51")

    def get(version: int | None) -> Institution:
        found: Institution = app.repository.get(institution_id, version=version)
        return found

    then = await anyio.to_thread.run_sync(get, 1)
    now = await anyio.to_thread.run_sync(get, None)
    assert (then.version, then.name) == (1, "Rumah Singgah Muhammadiyah Buleleng")
    assert (now.version, now.name) == (2, "Rumah Singgah Anak Buleleng")


# Two releases of one aggregate, as the old and the new code would define it: version 2 of
# `Parcel.Registered` added `weight_grams` and reads version-1 events with a default.
class ParcelV1(AggregateRoot):
    class Registered(AggregateRoot.Created):
        label: str

    @event(Registered)
    def __init__(self, label: str) -> None:
        self.label = label


class ParcelV2(AggregateRoot):
    class Registered(AggregateRoot.Created):
        label: str
        weight_grams: int
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["weight_grams"] = 0

    @event(Registered)
    def __init__(self, label: str, weight_grams: int) -> None:
        self.label = label
        self.weight_grams = weight_grams


async def test_old_event_versions_are_upcast_on_read(
    settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    assert settings.database_url is not None
    service = "upcasttest"
    await owner.execute(f"DROP SCHEMA IF EXISTS {service}_t51 CASCADE")
    await owner.execute(f"DROP SCHEMA IF EXISTS {service} CASCADE")
    # The service schema holds the composite type every tenant schema inserts through.
    await owner.execute(f"CREATE SCHEMA {service}")
    pool = EventStorePool(
        settings.database_url,
        types_schema=service,
        pool_size=1,
        max_overflow=0,
        lock_timeout=settings.lock_timeout_seconds,
    )
    try:
        old = TenantStores(service, pool, EventCatalogue([("Parcel", ParcelV1)]))
        new = TenantStores(service, pool, EventCatalogue([("Parcel", ParcelV2)]))
        await anyio.to_thread.run_sync(old.create_tables, "51")
        # What the migration adds: the library saves through the append function.
        await install_chain(owner, service, ["51"])
        await install_log_functions(
            owner, service, ["51"], await owner.fetchval("SELECT current_user")
        )

        def write_with_old_code() -> UUID:
            with command_context(context("51")):
                parcel = ParcelV1(label="Paket sembako")
                old.get("51").save(parcel)
                return parcel.id

        parcel_id = await anyio.to_thread.run_sync(write_with_old_code)
        state = json.loads(
            bytes(
                await owner.fetchval(
                    f"SELECT state FROM {service}_t51.{service}_events WHERE originator_id = $1",
                    parcel_id,
                )
            )
        )
        assert state["v"] == 1
        assert "weight_grams" not in state["data"]

        parcel = await get_from(new.get("51"), parcel_id)
        assert isinstance(parcel, ParcelV2)
        assert parcel.label == "Paket sembako"
        assert parcel.weight_grams == 0

        def write_with_new_code() -> UUID:
            with command_context(context("51")):
                parcel = ParcelV2(label="Paket obat", weight_grams=1200)
                new.get("51").save(parcel)
                return parcel.id

        newer_id = await anyio.to_thread.run_sync(write_with_new_code)
        newer = await get_from(new.get("51"), newer_id)
        assert newer.weight_grams == 1200
        state = json.loads(
            bytes(
                await owner.fetchval(
                    f"SELECT state FROM {service}_t51.{service}_events WHERE originator_id = $1",
                    newer_id,
                )
            )
        )
        assert state["v"] == 2
    finally:
        await anyio.to_thread.run_sync(pool.close)
        await owner.execute(f"DROP SCHEMA IF EXISTS {service}_t51 CASCADE")
        await owner.execute(f"DROP SCHEMA IF EXISTS {service} CASCADE")


async def test_each_tenant_has_its_own_log(registry: ServiceRuntime) -> None:
    async with registry.db.acquire() as conn:
        heads_before = await registry.logs.heads(conn)
    in_51 = {await register(registry, "51", f"PSKM Muhammadiyah Bali {i}") for i in range(3)}
    in_52 = {await register(registry, "52", "PSKM Muhammadiyah Lombok")}

    async with registry.db.acquire() as conn:
        heads = await registry.logs.heads(conn)
        log_51 = await registry.logs.read(conn, "51", after=0, limit=10_000)
        log_52 = await registry.logs.read(conn, "52", after=0, limit=10_000)
    assert heads["51"] == heads_before["51"] + 3
    assert heads["52"] == heads_before["52"] + 1
    # Every other tenant's log is untouched.
    assert {t: h for t, h in heads.items() if t not in {"51", "52"}} == {
        t: h for t, h in heads_before.items() if t not in {"51", "52"}
    }

    ids_51 = {e.aggregate_id for e in log_51}
    ids_52 = {e.aggregate_id for e in log_52}
    assert in_51 <= ids_51
    assert in_52 <= ids_52
    assert not ids_51 & ids_52
    assert {(e.tenant, e.meta.tenant) for e in log_51} == {("51", "51")}
    assert {(e.tenant, e.meta.tenant) for e in log_52} == {("52", "52")}
    for log in (log_51, log_52):
        # Positions count within the tenant's own log, from 1, and each event names the
        # one before it.
        assert log[0].position == 1
        assert log[0].previous_position is None
        assert all(b.previous_position == a.position for a, b in pairwise(log))
        assert heads[log[0].tenant] == log[-1].position


async def test_several_tenants_logs_read_in_one_call_as_each_alone(
    registry: ServiceRuntime,
) -> None:
    """The relay reads every tenant it is behind in one round trip: each tenant's events
    after its own position, limited per tenant, naming the event before each as `read`
    does, and never another tenant's."""
    for i in range(4):
        await register(registry, "51", f"PSKM Muhammadiyah Denpasar {i}")
    await register(registry, "52", "PSKM Muhammadiyah Mataram")
    async with registry.db.acquire() as conn:
        heads = await registry.logs.heads(conn)
        after = {"51": heads["51"] - 3, "52": heads["52"] - 1, "53": heads["53"]}
        many = await registry.logs.read_many(conn, after, limit=2)
        alone = {t: await registry.logs.read(conn, t, after=a, limit=2) for t, a in after.items()}
        with pytest.raises(KeyError):
            await registry.logs.read_many(conn, {"51": 0, "99": 0}, limit=2)
        # No tenant named on the connection after the call (its setting is confined).
        assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)
    assert many == alone
    assert [e.position for e in many["51"]] == [heads["51"] - 2, heads["51"] - 1]
    assert many["51"][0].previous_position == heads["51"] - 3
    assert [(e.tenant, e.position) for e in many["52"]] == [("52", heads["52"])]
    assert many["53"] == []


async def test_an_event_cannot_be_recorded_without_a_command_context(
    registry: ServiceRuntime,
) -> None:
    app = registry.stores.get("53")
    async with registry.db.acquire() as conn:
        head_before = await registry.logs.head(conn, "53")
    institution = Institution.register(
        tenant="53",
        name="Panti Asuhan Tanpa Jejak",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm="5371",
    )
    with pytest.raises(RuntimeError, match="no command context"):
        await anyio.to_thread.run_sync(app.save, institution)
    async with registry.db.acquire() as conn:
        assert await registry.logs.head(conn, "53") == head_before
