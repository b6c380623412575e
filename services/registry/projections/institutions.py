"""Institutions read model: one row per institution, its current state and version, and
every earlier version with the period it was valid (the directory as of any date); the
projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query
from shared.projections.temporal import TemporalTable

TABLE = "registry.institutions"


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


_COLUMNS = ", ".join(InstitutionView.__struct_fields__)
DIRECTORY = TemporalTable(TABLE, ["tenant_id", *InstitutionView.__struct_fields__])
_FILTERS = """($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
          AND ($3::text IS NULL OR pdm = $3)"""
_LIST = Query(
    InstitutionView,
    f"""SELECT {_COLUMNS} FROM {TABLE} WHERE {_FILTERS}
        ORDER BY name, id LIMIT $4 OFFSET $5""",
)
_LIST_AS_OF = Query(
    InstitutionView,
    f"""SELECT {_COLUMNS} FROM {DIRECTORY.history}
        WHERE {DIRECTORY.valid_at("$6")} AND {_FILTERS}
        ORDER BY name, id LIMIT $4 OFFSET $5""",
)
_ONE = Query(InstitutionView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")


async def list_institutions(
    conn: DbConnection,
    *,
    status: InstitutionStatus | None,
    kind: InstitutionType | None,
    pdm: str | None,
    limit: int,
    offset: int,
    as_of: datetime | None = None,
) -> list[InstitutionView]:
    """The institutions now, or as they were at `as_of`."""
    if as_of is None:
        return await _LIST.all(conn, status, kind, pdm, limit, offset)
    return await _LIST_AS_OF.all(conn, status, kind, pdm, limit, offset, as_of)


async def get_institution(conn: DbConnection, institution_id: UUID) -> InstitutionView | None:
    return await _ONE.one(conn, institution_id)


class InstitutionsProjection:
    name = "institutions"
    tables = DIRECTORY.tables

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

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


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: object) -> None:
    """The institution's row after one more event: its version, when, and what changed."""
    await DIRECTORY.update(conn, envelope, {"updated_at": envelope.occurred_at, **changes})
