"""Institutions read model: one row per institution, its current state and version, and
every earlier version with the period it was valid (the directory as of any date); the
projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar.params import Parameter

from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.listing import Listing, Page, SearchText, searchable
from shared.projections.queries import Query
from shared.projections.temporal import TemporalTable

TABLE = "registry.institutions"


class _Searched(msgspec.Struct):
    """What the search column is made of."""

    name: str
    address: str | None


class InstitutionView(msgspec.Struct):
    id: UUID
    name: str
    kind: InstitutionType
    owner: Owner
    pdm: str
    address: str | None
    # The branch (PCM, or PCA for 'Aisyiyah) it sits under; None: directly under its PDM.
    unit: str | None
    status: InstitutionStatus
    version: int
    registered_at: datetime
    updated_at: datetime


class InstitutionFilters(msgspec.Struct, kw_only=True, frozen=True):
    """The directory's filters: each field a query parameter and, by its name, the column
    it matches (`shared.projections.listing`); a new filter on a column is one field."""

    status: InstitutionStatus | None = None
    kind: InstitutionType | None = None
    pdm: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None
    q: SearchText = None


class PublicInstitution(msgspec.Struct):
    """What anyone may see of an institution (seed 002: institution data open to the
    public). The allow-list: only these columns are selected, never the officers or any
    other personal data."""

    id: UUID
    name: str
    kind: InstitutionType
    owner: Owner
    pdm: str
    address: str | None
    status: InstitutionStatus
    # The accreditation (grade and expiry) joins here once its read model lands.


_COLUMNS = ", ".join(InstitutionView.__struct_fields__)
DIRECTORY = TemporalTable(TABLE, ["tenant_id", *InstitutionView.__struct_fields__, "search"])
INSTITUTIONS = Listing(InstitutionView, DIRECTORY, InstitutionFilters, order="name, id")
PUBLIC_INSTITUTIONS = Listing(PublicInstitution, DIRECTORY, InstitutionFilters, order="name, id")
_ONE = Query(InstitutionView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")
_PUBLIC_ONE = Query(
    PublicInstitution,
    f"SELECT {', '.join(PublicInstitution.__struct_fields__)} FROM {TABLE} WHERE id = $1",
)
_SEARCHED = Query(_Searched, f"SELECT name, address FROM {TABLE} WHERE tenant_id = $1 AND id = $2")


async def list_institutions(
    conn: DbConnection,
    filters: InstitutionFilters,
    *,
    limit: int,
    offset: int,
    as_of: datetime | None = None,
) -> Page[InstitutionView]:
    """A page of the institutions now, or as they were at `as_of`, with the total."""
    return await INSTITUTIONS.page(conn, filters, limit=limit, offset=offset, as_of=as_of)


async def get_institution(conn: DbConnection, institution_id: UUID) -> InstitutionView | None:
    return await _ONE.one(conn, institution_id)


async def get_public_institution(
    conn: DbConnection, institution_id: UUID
) -> PublicInstitution | None:
    return await _PUBLIC_ONE.one(conn, institution_id)


class InstitutionsProjection:
    name = "institutions"
    tables = DIRECTORY.tables

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Other events change nothing shown here, but an institution's own (its officers,
        its profile) still move the row to the record's version: clients send that version
        back (If-Match) with their next command."""
        if envelope.aggregate == "Institution":
            await _update(conn, envelope)

    @on.register
    async def _(
        self, event: Institution.AddressChanged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # The directory (and its search text) shows where the institution is now.
        await _update(conn, envelope, address=event.address)

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await DIRECTORY.insert(
            conn,
            envelope,
            {
                "name": event.name,
                "kind": event.kind,
                "owner": event.owner,
                "pdm": event.pdm,
                "address": event.address,
                "unit": event.unit,
                "search": searchable(event.name, event.address),
                "status": InstitutionStatus.ACTIVE,
                "registered_at": envelope.occurred_at,
                "updated_at": envelope.occurred_at,
            },
        )

    @on.register
    async def _(
        self, event: Institution.Renamed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, name=event.name)

    @on.register
    async def _(
        self, event: Institution.MovedToUnit, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, unit=event.unit)

    @on.register
    async def _(
        self, event: Institution.Suspended, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=InstitutionStatus.SUSPENDED)

    @on.register
    async def _(
        self, event: Institution.Reinstated, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=InstitutionStatus.ACTIVE)

    @on.register
    async def _(
        self, event: Institution.Closed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=InstitutionStatus.CLOSED)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: Any) -> None:
    """The institution's row after one more event: its version, when, and what changed;
    its search text follows its name and address."""
    if {"name", "address"} & changes.keys():
        row = await _SEARCHED.one(conn, envelope.tenant, envelope.aggregate_id)
        if row is not None:
            changes["search"] = searchable(
                changes.get("name", row.name), changes.get("address", row.address)
            )
    await DIRECTORY.update(conn, envelope, {"updated_at": envelope.occurred_at, **changes})
