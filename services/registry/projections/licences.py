"""Licences read model: one row per institution and kind (registration letter, operating
licence), its current licence, and every earlier version with the period it was valid;
the projection writing it and the queries reading it (expiring soon, expired)."""

from __future__ import annotations

from datetime import date, datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.registry.domain.licence import Licence, LicenceKind, LicenceStatus
from services.registry.projections.institutions import DIRECTORY
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query
from shared.projections.temporal import TemporalTable

TABLE = "registry.licences"


class LicenceView(msgspec.Struct):
    id: UUID
    institution_id: UUID
    institution_name: str | None
    pdm: str
    kind: LicenceKind
    number: str
    issuer: str
    issued_on: date
    valid_until: date | None
    status: LicenceStatus
    version: int
    updated_at: datetime


_OWN = [
    "tenant_id",
    *(c for c in LicenceView.__struct_fields__ if c != "institution_name"),
]
LICENCES = TemporalTable(TABLE, _OWN)
_VIEW = ", ".join(f"l.{c}" for c in _OWN if c != "tenant_id")
# The institution's name from the directory: now, or in its version valid at the moment
# ($9) the list is read as of.
_JOIN = f"""LEFT JOIN {DIRECTORY.table} i
    ON i.tenant_id = l.tenant_id AND i.id = l.institution_id"""
_JOIN_AS_OF = f"""LEFT JOIN {DIRECTORY.history} i
    ON i.tenant_id = l.tenant_id AND i.id = l.institution_id AND {DIRECTORY.valid_at("$9", "i")}"""
# $5/$6: valid until on or after / on or before (expiring within N days; expired).
_FILTERS = """($1::text IS NULL OR l.kind = $1) AND ($2::text IS NULL OR l.status = $2)
          AND ($3::text IS NULL OR l.pdm = $3) AND ($4::uuid IS NULL OR l.institution_id = $4)
          AND ($5::date IS NULL OR l.valid_until >= $5)
          AND ($6::date IS NULL OR l.valid_until <= $6)"""
_LIST = Query(
    LicenceView,
    f"""SELECT {_VIEW}, i.name AS institution_name FROM {TABLE} l {_JOIN}
        WHERE {_FILTERS}
        ORDER BY l.valid_until NULLS LAST, i.name, l.id LIMIT $7 OFFSET $8""",
)
_LIST_AS_OF = Query(
    LicenceView,
    f"""SELECT {_VIEW}, i.name AS institution_name FROM {LICENCES.history} l {_JOIN_AS_OF}
        WHERE {LICENCES.valid_at("$9", "l")} AND {_FILTERS}
        ORDER BY l.valid_until NULLS LAST, i.name, l.id LIMIT $7 OFFSET $8""",
)


async def list_licences(
    conn: DbConnection,
    *,
    kind: LicenceKind | None,
    status: LicenceStatus | None,
    pdm: str | None,
    institution_id: UUID | None,
    valid_from: date | None,
    valid_by: date | None,
    limit: int,
    offset: int,
    as_of: datetime | None = None,
) -> list[LicenceView]:
    """The licences now, or as they were at `as_of`, whose end date lies in
    [`valid_from`, `valid_by`] (either bound optional)."""
    args = (kind, status, pdm, institution_id, valid_from, valid_by, limit, offset)
    if as_of is None:
        return await _LIST.all(conn, *args)
    return await _LIST_AS_OF.all(conn, *args, as_of)


class LicencesProjection:
    name = "licences"
    tables = LICENCES.tables

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(self, event: Licence.Recorded, conn: DbConnection, envelope: EventEnvelope) -> None:
        await LICENCES.insert(
            conn,
            envelope,
            {
                "institution_id": event.institution_id,
                "pdm": event.pdm,
                "kind": event.kind,
                "number": event.number,
                "issuer": event.issuer,
                "issued_on": event.issued_on,
                "valid_until": event.valid_until,
                "status": LicenceStatus.VALID,
                "updated_at": envelope.occurred_at,
            },
        )

    @on.register
    async def _(self, event: Licence.Renewed, conn: DbConnection, envelope: EventEnvelope) -> None:
        await _update(
            conn,
            envelope,
            number=event.number,
            issuer=event.issuer,
            issued_on=event.issued_on,
            valid_until=event.valid_until,
            status=LicenceStatus.VALID,
        )

    @on.register
    async def _(self, event: Licence.Revoked, conn: DbConnection, envelope: EventEnvelope) -> None:
        await _update(conn, envelope, status=LicenceStatus.REVOKED)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: object) -> None:
    await LICENCES.update(conn, envelope, {"updated_at": envelope.occurred_at, **changes})
