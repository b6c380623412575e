"""Scope below the tenant in the kernel, against real PostgreSQL: the unit of work refuses
records outside the actor's scope whatever the handler does, and every read-model table
with a PDM is narrowed by a row-level security policy, with no scope left behind on a
pooled connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import InstitutionType
from shared.db.pool import create_pool
from shared.domain.errors import OutOfScope
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.context import CommandContext
from shared.http.reads import scoped_transaction
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Command
from shared.settings import Settings
from tests.helpers import accepted, running

pytestmark = pytest.mark.timeout(240)

TENANT = "36"  # Banten
HOME, AWAY = "3671", "3672"


@pytest.fixture(scope="module")
async def runtimes(settings: Settings) -> AsyncIterator[dict[str, ServiceRuntime]]:
    # Starting a service applies its read-side migrations.
    async with (
        running("registry", settings) as registry,
        running("hr", settings) as hr,
        running("cases", settings) as cases,
    ):
        yield {"registry": registry, "hr": hr, "cases": cases}


async def _run(
    runtime: ServiceRuntime, scope: Scope, command: Command, expected: int | None = None
) -> UUID:
    ctx = CommandContext(tenant=TENANT, actor="scope-tests", correlation_id="c", scope=scope)
    target = getattr(command, "institution_id", None)
    versions = {target: expected} if target is not None and expected is not None else None
    return accepted(await runtime.bus.execute(command, ctx, expected_versions=versions)).id


def _register(pdm: str) -> RegisterInstitution:
    return RegisterInstitution(name=f"LKSA {pdm}", kind=InstitutionType.LKSA, pdm=pdm)


async def test_the_unit_of_work_refuses_records_outside_the_actors_scope(
    runtimes: dict[str, ServiceRuntime], owner: asyncpg.Connection[Any]
) -> None:
    registry = runtimes["registry"]
    away = await _run(registry, PROVINCE, _register(AWAY))
    head = await owner.fetchval(
        f"SELECT max(notification_id) FROM registry_t{TENANT}.registry_events"
    )
    operator = Scope(pdm=HOME)
    taking = RenameInstitution(institution_id=away, name="LKSA Diambil")
    for command, expected in (
        (_register(AWAY), None),
        (taking, None),
        # A stale version is not revealed to an actor out of reach.
        (taking, 7),
    ):
        with pytest.raises(OutOfScope, match=HOME):
            await _run(registry, operator, command, expected)
    assert (
        await owner.fetchval(f"SELECT max(notification_id) FROM registry_t{TENANT}.registry_events")
        == head
    )
    home = await _run(registry, operator, _register(HOME))
    await _run(registry, operator, RenameInstitution(institution_id=home, name="LKSA Rumah"), 1)


async def test_every_read_model_table_with_a_pdm_has_a_restrictive_scope_policy(
    runtimes: dict[str, ServiceRuntime], owner: asyncpg.Connection[Any]
) -> None:
    tables = [
        r["t"]
        for r in await owner.fetch(
            """SELECT table_schema || '.' || table_name AS t FROM information_schema.columns
               WHERE column_name = 'pdm' AND table_schema = ANY($1::text[]) ORDER BY 1""",
            list(runtimes),
        )
    ]
    assert {"registry.institutions", "hr.workers", "cases.complaints"} <= set(tables)
    unscoped = [
        t
        for t in tables
        if not await owner.fetchval(
            """SELECT count(*) FROM pg_policy WHERE polrelid = $1::regclass
                 AND polname = 'actor_scope' AND NOT polpermissive AND polcmd = 'r'""",
            t,
        )
    ]
    assert unscoped == [], f"read-model tables a PDM operator would read whole: {unscoped}"


async def test_a_scoped_read_sees_only_its_rows_and_leaves_nothing_behind(
    runtimes: dict[str, ServiceRuntime], settings: Settings
) -> None:
    registry = runtimes["registry"]
    home = await _run(registry, PROVINCE, _register(HOME))
    away = await _run(registry, PROVINCE, _register(AWAY))
    await registry.projections.catch_up()
    assert settings.database_url is not None
    # One connection, so each transaction below reuses the one before it.
    pool = await create_pool(registry.app_database_url, max_size=1)

    async def visible(scope: Scope) -> set[UUID]:
        async with scoped_transaction(pool, TENANT, scope) as conn:
            rows = await conn.fetch(
                "SELECT id FROM registry.institutions WHERE id = ANY($1::uuid[])", [home, away]
            )
        return {r["id"] for r in rows}

    try:
        assert await visible(Scope(pdm=HOME)) == {home}
        assert await visible(PROVINCE) == {home, away}
        assert await visible(Scope(institution=away)) == {away}
        assert await visible(Scope(institution=uuid4())) == set()
        assert await visible(PROVINCE) == {home, away}
    finally:
        await pool.close()
