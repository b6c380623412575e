"""The accreditation register and the licence lists name each institution as the directory
does: its current name now, the name it had then as of a date (the directory's history),
in the list, its download and after a rebuild of the register; and the directory's pages
(the whole list walks its index, a scoped reader's list narrows by its own index) add up
to the list with its exact total, now and as of a date.

Tenant 61 (Sulawesi Barat) belongs to this module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.application.record_licence import RecordLicence
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.accreditation import Grade, Scores
from services.registry.domain.institution import InstitutionType
from services.registry.domain.licence import LicenceKind
from services.registry.projections import accreditation, institutions, licences
from services.registry.projections.accreditation import RegisterFilters
from shared.db.pool import DbConnection, tenant_transaction
from shared.domain.organisation import PROVINCE, Scope
from shared.http.reads import scoped_transaction
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import accepted, register_institution_in, run_command, running

pytestmark = pytest.mark.timeout(120)

TENANT = "61"
MAMUJU = "6104"
POLEWALI = "6103"
OLD_NAME = "LKSA Muhammadiyah Mamuju"
NEW_NAME = "LKSA Muhammadiyah Mamuju Tengah"


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> Any:
    async with running("registry", settings) as runtime:
        yield runtime


async def _register(conn: DbConnection, *, as_of: datetime | None = None) -> list[Any]:
    day = date.today()
    return await accreditation.list_accreditations(
        conn, RegisterFilters(kind=InstitutionType.LKSA), day=day, limit=500, offset=0, as_of=as_of
    )


async def _licences(conn: DbConnection, *, as_of: datetime | None = None) -> list[Any]:
    return await licences.list_licences(
        conn,
        kind=LicenceKind.OPERATING,
        status=None,
        pdm=None,
        institution_id=None,
        valid_from=None,
        valid_by=None,
        limit=500,
        offset=0,
        as_of=as_of,
    )


async def test_a_renamed_institution_shows_in_the_register_by_its_name_as_of_the_date(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    lksa = await register_institution_in(registry, TENANT, OLD_NAME, pdm=MAMUJU)
    decided = date.today() - timedelta(days=30)
    await run_command(
        registry,
        TENANT,
        RecordAccreditation(
            institution_id=lksa,
            grade=Grade.B,
            scores=Scores(
                programme=80, human_resources=75, management=78, facilities=70, service_results=77
            ),
            decided_on=decided,
            regulation="Permensos 8/2025",
            certificate_number="61/BAN-PS/LKS/2026",
        ),
    )
    accepted(
        await run_command(
            registry,
            TENANT,
            RecordLicence(
                institution_id=lksa,
                kind=LicenceKind.OPERATING,
                number="460/61/IO",
                issuer="Dinas Sosial Provinsi Sulawesi Barat",
                issued_on=decided,
                valid_until=decided + timedelta(days=5 * 365),
            ),
        )
    )
    await registry.projections.catch_up()
    before_rename = datetime.now(UTC)
    await run_command(registry, TENANT, RenameInstitution(institution_id=lksa, name=NEW_NAME))
    await registry.projections.catch_up()

    async def names() -> dict[str, set[str | None]]:
        async with tenant_transaction(registry.db, TENANT) as conn:
            then = await _register(conn, as_of=before_rename)
            now = await _register(conn)
            download = [
                row
                async for row in accreditation.register_rows(
                    conn, RegisterFilters(), day=date.today(), as_of=before_rename
                )
            ]
            of_one = await accreditation.accreditation_of(conn, lksa)
            licences_then = await _licences(conn, as_of=before_rename)
            licences_now = await _licences(conn)

        def of(rows: list[Any]) -> set[str | None]:
            return {r.institution_name for r in rows if r.institution_id == lksa}

        assert of_one is not None
        assert of_one.kind == InstitutionType.LKSA
        return {
            "register then": of(then),
            "register now": of(now),
            "download then": of(download),
            "one now": {of_one.institution_name},
            "licences then": of(licences_then),
            "licences now": of(licences_now),
        }

    expected = {
        "register then": {OLD_NAME},
        "register now": {NEW_NAME},
        "download then": {OLD_NAME},
        "one now": {NEW_NAME},
        "licences then": {OLD_NAME},
        "licences now": {NEW_NAME},
    }
    assert await names() == expected
    # The register rebuilt from the log reads the same (`mpks rebuild accreditations`).
    assert await registry.projections.rebuild(owner, "accreditations") > 0
    assert await names() == expected


async def _page(
    runtime: ServiceRuntime,
    scope: Scope,
    *,
    limit: int,
    offset: int,
    as_of: datetime | None = None,
    **filters: Any,
) -> tuple[list[UUID], int]:
    async with scoped_transaction(runtime.db, TENANT, scope) as conn:
        page = await institutions.list_institutions(
            conn,
            institutions.InstitutionFilters(**filters),
            limit=limit,
            offset=offset,
            day=date.today(),
            reader=scope,
            as_of=as_of,
        )
    return [row.id for row in page.items], page.total


async def _pages(
    runtime: ServiceRuntime, scope: Scope, as_of: datetime | None = None, **filters: Any
) -> tuple[list[UUID], set[int]]:
    """Every row, two at a time, and the totals each page gave (past the end too)."""
    rows: list[UUID] = []
    totals: set[int] = set()
    while True:
        ids, total = await _page(runtime, scope, limit=2, offset=len(rows), as_of=as_of, **filters)
        totals.add(total)
        if not ids:
            return rows, totals
        rows += ids


async def test_pages_of_the_directory_add_up_to_the_list_with_its_total(
    registry: ServiceRuntime,
) -> None:
    for n in range(5):
        await register_institution_in(registry, TENANT, f"Panti Asuhan Polewali {n}", pdm=POLEWALI)
    await registry.projections.catch_up()
    before_last = datetime.now(UTC)
    last = await register_institution_in(registry, TENANT, "Panti Asuhan Polewali 5", pdm=POLEWALI)
    await registry.projections.catch_up()

    async with tenant_transaction(registry.db, TENANT) as conn:
        every = await conn.fetch(
            "SELECT id, pdm FROM registry.institutions ORDER BY name, id"  # what pages must give
        )
    whole = [r["id"] for r in every]
    # The whole province: pages in order, none overlapping, each with the list's total.
    assert await _pages(registry, PROVINCE) == (whole, {len(whole)})
    # As of before the last registration: the list then, its total then.
    then = [i for i in whole if i != last]
    assert await _pages(registry, PROVINCE, as_of=before_last) == (then, {len(then)})
    # A PDM operator's list: only its PDM, with its own total (a filter narrows alike).
    polewali = [r["id"] for r in every if r["pdm"] == POLEWALI]
    assert len(polewali) >= 6
    assert await _pages(registry, Scope(pdm=POLEWALI)) == (polewali, {len(polewali)})
    assert await _pages(registry, PROVINCE, pdm=POLEWALI) == (polewali, {len(polewali)})
    # Institution staff: their institution alone.
    assert await _page(registry, Scope(institution=last), limit=100, offset=0) == ([last], 1)
    # A scope the reader's policy refuses stays refused, whatever the WHERE says.
    assert await _page(registry, Scope(pdm=MAMUJU), limit=100, offset=0, pdm=POLEWALI) == ([], 0)


async def test_lists_of_other_columns_page_one_after_the_other_on_one_connection(
    registry: ServiceRuntime,
) -> None:
    # A whole list pages through a cursor; asyncpg keeps the row shape of each statement it
    # prepared on a connection, so the public list and the directory (other columns) must
    # not fetch from cursors of one name (seen: a 500 for the second on that connection).
    await register_institution_in(registry, TENANT, "Panti Asuhan Majene", pdm=POLEWALI)
    await registry.projections.catch_up()
    async with tenant_transaction(registry.db, TENANT) as conn:
        for _ in range(2):
            public = await institutions.PUBLIC_INSTITUTIONS.page(
                conn, institutions.PublicInstitutionFilters(), limit=5, offset=0
            )
            directory = await institutions.list_institutions(
                conn, institutions.InstitutionFilters(), limit=5, offset=0, day=date.today()
            )
            assert [i.id for i in public.items] == [i.id for i in directory.items]
            assert public.total == directory.total > 0
