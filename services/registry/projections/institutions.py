"""Institutions read model: one row per institution, its current state and version; the
projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from services.registry.domain.institution import InstitutionStatus, InstitutionType, Owner
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

    async def apply(self, conn: DbConnection, event: EventEnvelope) -> None:
        if event.aggregate != "Institution":
            return
        data = event.data
        if event.event == "Registered":
            await conn.execute(
                f"""INSERT INTO {TABLE}
                     (tenant_id, id, name, kind, owner, pdm, address, status, version,
                      registered_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $9)
                   ON CONFLICT (tenant_id, id) DO NOTHING""",
                event.tenant,
                event.aggregate_id,
                data["name"],
                data["kind"],
                data["owner"],
                data["pdm"],
                data.get("address"),
                event.aggregate_version,
                event.occurred_at,
            )
            return
        changes: dict[str, object] = {}
        if event.event == "Renamed":
            changes["name"] = data["name"]
        elif event.event == "Suspended":
            changes["status"] = "suspended"
        elif event.event == "Reinstated":
            changes["status"] = "active"
        assignments = "".join(f", {column} = ${i + 5}" for i, column in enumerate(changes))
        # The version guard makes replaying an already-applied event a no-op.
        await conn.execute(
            f"""UPDATE {TABLE}
                SET version = $3, updated_at = $4{assignments}
                WHERE tenant_id = $1 AND id = $2 AND version < $3""",
            event.tenant,
            event.aggregate_id,
            event.aggregate_version,
            event.occurred_at,
            *changes.values(),
        )
