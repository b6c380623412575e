"""Scope below the tenant in the kernel, against real PostgreSQL: the command runner refuses
records outside the actor's scope whatever the handler does, and every read-model table
with a PDM is narrowed by a row-level security policy, with no scope left behind on a
pooled connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest

from services.registry.application.register_institution import register_institution
from services.registry.application.rename_institution import rename_institution
from services.registry.domain.institution import InstitutionType, Owner
from shared.db.pool import create_pool
from shared.domain.errors import OutOfScope
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.commands import Handler
from shared.eventstore.context import CommandContext
from shared.http.commands import CommandAccepted
from shared.http.reads import scoped_transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import running

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


async def _run(runtime: ServiceRuntime, scope: Scope, handler: Handler) -> UUID:
    ctx = CommandContext(tenant=TENANT, actor="scope-tests", correlation_id="c", scope=scope)
    outcome = await runtime.commands.run(TENANT, ctx, handler)
    assert outcome.status in (200, 201), outcome
    return msgspec.json.decode(outcome.body, type=CommandAccepted).id


def _register(pdm: str) -> Handler:
    return lambda app: register_institution(
        app,
        name=f"LKSA {pdm}",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm=pdm,
        address=None,
    )


async def test_the_runner_refuses_records_outside_the_actors_scope(
    runtimes: dict[str, ServiceRuntime], owner: asyncpg.Connection[Any]
) -> None:
    registry = runtimes["registry"]
    away = await _run(registry, PROVINCE, _register(AWAY))
    head = await owner.fetchval(
        f"SELECT max(notification_id) FROM registry_t{TENANT}.registry_events"
    )
    operator = Scope(pdm=HOME)
    for handler in (
        _register(AWAY),
        lambda app: rename_institution(app, away, name="LKSA Diambil", expected_version=None),
        # A stale version is not revealed to an actor out of reach.
        lambda app: rename_institution(app, away, name="LKSA Diambil", expected_version=7),
    ):
        with pytest.raises(OutOfScope, match=HOME):
            await _run(registry, operator, handler)
    assert (
        await owner.fetchval(f"SELECT max(notification_id) FROM registry_t{TENANT}.registry_events")
        == head
    )
    home = await _run(registry, operator, _register(HOME))
    await _run(
        registry,
        operator,
        lambda app: rename_institution(app, home, name="LKSA Rumah", expected_version=1),
    )


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
