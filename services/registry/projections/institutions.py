"""Institutions read model: one row per institution, its current state and version; the
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

TABLE = "registry.institutions"


class InstitutionView(msgspec.Struct):
    id: UUID
    name: str
    kind: InstitutionType
    owner: Owner
    pdm: str
    address: str | None
    status: InstitutionStatus
    version: int
    registered_at: datetime
    updated_at: datetime


_COLUMNS = ", ".join(InstitutionView.__struct_fields__)
_LIST = Query(
    InstitutionView,
    f"""SELECT {_COLUMNS} FROM {TABLE}
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
          AND ($3::text IS NULL OR pdm = $3)
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
) -> list[InstitutionView]:
    return await _LIST.all(conn, status, kind, pdm, limit, offset)


async def get_institution(conn: DbConnection, institution_id: UUID) -> InstitutionView | None:
    return await _ONE.one(conn, institution_id)


class InstitutionsProjection:
    name = "institutions"
    tables = (TABLE,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {TABLE}
                 (tenant_id, id, name, kind, owner, pdm, address, status, version,
                  registered_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $9)
               ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            envelope.aggregate_id,
            event.name,
            event.kind,
            event.owner,
            event.pdm,
            event.address,
            envelope.aggregate_version,
            envelope.occurred_at,
        )

    @on.register
    async def _(
        self, event: Institution.Renamed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, name=event.name)

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
    assignments = "".join(f", {column} = ${i + 5}" for i, column in enumerate(changes))
    # The version guard makes replaying an already-applied event a no-op.
    await conn.execute(
        f"""UPDATE {TABLE}
            SET version = $3, updated_at = $4{assignments}
            WHERE tenant_id = $1 AND id = $2 AND version < $3""",
        envelope.tenant,
        envelope.aggregate_id,
        envelope.aggregate_version,
        envelope.occurred_at,
        *changes.values(),
    )
