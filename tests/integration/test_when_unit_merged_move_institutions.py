"""The registry's rule "when a branch merges, its institutions move to the branch it merged
into", on real PostgreSQL: run by the registry's readers after the merge, once per
institution, closed ones left alone, and nothing moves twice when the rule runs again (a
crash before its position was saved, a rebuild).

Tenant 64 belongs to this module (PDM 6474, Kota Bontang; other modules use 6471, 6472).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest

from services.registry.application.close_institution import CloseInstitution
from services.registry.application.merge_unit import MergeUnit
from services.registry.application.open_unit import OpenUnit
from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import InstitutionType
from services.registry.domain.organisation_unit import UnitKind, unit_id
from services.registry.process_managers.when_unit_merged_move_institutions import (
    WhenUnitMergedMoveInstitutions,
)
from shared.db.pool import DbConnection, tenant_transaction
from shared.eventstore.context import CommandContext
from shared.eventstore.envelope import EventEnvelope
from shared.projections.dispatch import typed
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import accepted, run_command, running

pytestmark = pytest.mark.timeout(120)

TENANT = "64"
MERGED, SURVIVING = "647401", "647402"


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("registry", settings) as runtime:
        yield runtime


async def moves_of(
    owner: asyncpg.Connection[Any], institutions: list[UUID]
) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        f"""SELECT originator_id, state FROM registry_t{TENANT}.registry_events
            WHERE topic = 'Institution.MovedToUnit' AND originator_id = ANY($1)
            ORDER BY notification_id""",
        institutions,
    )
    return [
        {"institution": r["originator_id"], **msgspec.json.decode(bytes(r["state"]))} for r in rows
    ]


async def branches(conn: DbConnection, institutions: list[UUID]) -> list[str]:
    """The branch the directory shows each institution under."""
    rows = await conn.fetch(
        "SELECT id, unit FROM registry.institutions WHERE id = ANY($1)", institutions
    )
    unit = {r["id"]: r["unit"] for r in rows}
    return [unit[i] for i in institutions]


async def test_a_merged_branchs_institutions_move_once_closed_ones_stay(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    async def run(command: Any, correlation: str = "setup") -> UUID:
        ctx = CommandContext(tenant=TENANT, actor="admin-64", correlation_id=correlation)
        return accepted(await run_command(registry, TENANT, command, ctx=ctx)).id

    await run(OpenUnit(kind=UnitKind.PDM, code="6474", name="PDM Kota Bontang"))
    for code, name in ((MERGED, "PCM Bontang Selatan"), (SURVIVING, "PCM Bontang Utara")):
        await run(OpenUnit(kind=UnitKind.PCM, code=code, name=name))
    homes = [
        await run(
            RegisterInstitution(
                name=f"Panti Asuhan Muhammadiyah Bontang {n}",
                kind=InstitutionType.LKSA,
                pdm="6474",
                unit=MERGED,
            )
        )
        for n in range(3)
    ]
    *open_homes, closed = homes
    await run(CloseInstitution(institution_id=closed, reason="Dibubarkan pengurus"))
    await registry.projections.catch_up([TENANT])
    [rule] = [
        p for p in registry.projections.projections if isinstance(p, WhenUnitMergedMoveInstitutions)
    ]

    # A crash after the rule's moves committed but before its position was saved, and the
    # merge delivered again: the rule runs twice on the directory as it was before the
    # moves (one snapshot, taken before the merge; other readers, a worker of the session
    # among them, may run the rule meanwhile too).
    async with registry.db.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", TENANT)
        assert await branches(conn, homes) == [MERGED] * 3
        await run(
            MergeUnit(
                unit_id=unit_id(UnitKind.PCM, MERGED),
                into=SURVIVING,
                reason="Keputusan pleno 3/2026",
            ),
            correlation="merging-6474",
        )
        merged = await merge_event(registry)
        for _ in range(2):
            await rule.on(typed(registry.catalogue, merged), conn, merged)

    # Then the readers apply the merge (the rule runs a third time) and the moves.
    await registry.projections.catch_up([TENANT])
    first = await moves_of(owner, homes)
    assert sorted(m["institution"] for m in first) == sorted(open_homes)
    for move in first:
        assert move["data"]["unit"] == SURVIVING
        assert move["meta"]["actor"] == f"process-manager:{WhenUnitMergedMoveInstitutions.name}"
        assert move["meta"]["causation_id"] == merged.message_id
        assert move["meta"]["correlation_id"] == "merging-6474"
        assert move["meta"]["reason"] == (
            f"PCM {MERGED} merged into PCM {SURVIVING}: Keputusan pleno 3/2026"
        )
    async with tenant_transaction(registry.db, TENANT) as reader:
        # The closed institution stays where it was closed.
        assert await branches(reader, homes) == [SURVIVING, SURVIVING, MERGED]

    # A rebuild replays the tenant's whole log through the rule: nothing moves twice.
    await registry.projections.rebuild(owner, WhenUnitMergedMoveInstitutions.name)
    await registry.projections.catch_up([TENANT])
    assert await moves_of(owner, homes) == first


async def merge_event(registry: ServiceRuntime) -> EventEnvelope:
    async with registry.db.acquire() as conn:
        [merged] = [
            e
            for e in await registry.logs.read(conn, TENANT, after=0, limit=10_000)
            if e.event == "Merged" and e.aggregate_id == unit_id(UnitKind.PCM, MERGED)
        ]
    return merged
