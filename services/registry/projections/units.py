"""Organisation units read model: one row per council (PDM, PCM, PDA, PCA), its state and
version now, and every earlier version with the period it was valid (the list as of any
date); the projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.registry.domain.organisation_unit import (
    OrganisationUnit,
    UnitKind,
    UnitStatus,
    regency_of,
)
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query
from shared.projections.temporal import TemporalTable

TABLE = "registry.organisation_units"


class UnitView(msgspec.Struct):
    id: UUID
    kind: UnitKind
    code: str
    name: str
    # The regency unit a branch sits under (None for a PDM or PDA).
    parent: str | None
    # The regency/city it lies in: what a PDM operator's scope reads.
    pdm: str
    status: UnitStatus
    merged_into: str | None
    version: int
    opened_at: datetime
    updated_at: datetime


_COLUMNS = ", ".join(UnitView.__struct_fields__)
UNITS = TemporalTable(TABLE, ["tenant_id", *UnitView.__struct_fields__])
_FILTERS = """($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR parent = $2)
          AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR code = $4)"""
_LIST = Query(
    UnitView,
    f"""SELECT {_COLUMNS} FROM {TABLE} WHERE {_FILTERS}
        ORDER BY code, kind LIMIT $5 OFFSET $6""",
)
_LIST_AS_OF = Query(
    UnitView,
    f"""SELECT {_COLUMNS} FROM {UNITS.history}
        WHERE {UNITS.valid_at("$7")} AND {_FILTERS}
        ORDER BY code, kind LIMIT $5 OFFSET $6""",
)
_ONE = Query(UnitView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")


async def list_units(
    conn: DbConnection,
    *,
    kind: UnitKind | None,
    parent: str | None,
    status: UnitStatus | None,
    code: str | None,
    limit: int,
    offset: int,
    as_of: datetime | None = None,
) -> list[UnitView]:
    """The units now, or as they were at `as_of`."""
    if as_of is None:
        return await _LIST.all(conn, kind, parent, status, code, limit, offset)
    return await _LIST_AS_OF.all(conn, kind, parent, status, code, limit, offset, as_of)


async def get_unit(conn: DbConnection, unit_id: UUID) -> UnitView | None:
    return await _ONE.one(conn, unit_id)


# `UNION`, not `UNION ALL`: a chain of merges ends (a unit merges only into an open one),
# and should a row ever say otherwise the walk still stops.
_SURVIVOR = f"""
    WITH RECURSIVE chain AS (
        SELECT code, status, merged_into FROM {TABLE} WHERE kind = $1 AND code = $2
        UNION
        SELECT u.code, u.status, u.merged_into FROM {TABLE} u
        JOIN chain c ON u.kind = $1 AND u.code = c.merged_into)
    SELECT code FROM chain WHERE status = 'open'"""
_ABSORBED = f"""
    WITH RECURSIVE absorbed AS (
        SELECT $2::text AS code
        UNION
        SELECT u.code FROM {TABLE} u
        JOIN absorbed a ON u.kind = $1 AND u.merged_into = a.code AND u.status = 'merged')
    SELECT code FROM absorbed"""


async def survivor_of(conn: DbConnection, kind: UnitKind, code: str) -> str | None:
    """The open unit `kind` `code` lives on in: itself if open, else the one it merged
    into, following later merges; None when that chain ends at a closed (or unrecorded)
    unit."""
    found: str | None = await conn.fetchval(_SURVIVOR, kind, code)
    return found


async def absorbed_into(conn: DbConnection, kind: UnitKind, code: str) -> list[str]:
    """`code` and the units of `kind` merged into it, directly or through others."""
    return [r["code"] for r in await conn.fetch(_ABSORBED, kind, code)]


class UnitsProjection:
    name = "organisation_units"
    tables = UNITS.tables

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: OrganisationUnit.Opened, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await UNITS.insert(
            conn,
            envelope,
            {
                "kind": event.kind,
                "code": event.code,
                "name": event.name,
                "parent": event.parent,
                "pdm": regency_of(event.code),
                "status": UnitStatus.OPEN,
                "merged_into": None,
                "opened_at": envelope.occurred_at,
                "updated_at": envelope.occurred_at,
            },
        )

    @on.register
    async def _(
        self, event: OrganisationUnit.Renamed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, name=event.name)

    @on.register
    async def _(
        self, event: OrganisationUnit.Merged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=UnitStatus.MERGED, merged_into=event.into)

    @on.register
    async def _(
        self, event: OrganisationUnit.Closed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=UnitStatus.CLOSED)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: object) -> None:
    await UNITS.update(conn, envelope, {"updated_at": envelope.occurred_at, **changes})
