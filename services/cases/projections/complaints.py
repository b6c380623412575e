"""Complaints read model: the projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.cases.domain.complaint import Channel, Complaint
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query

TABLE = "cases.complaints"


class ComplaintView(msgspec.Struct):
    id: UUID
    channel: Channel
    summary: str
    concerns_child: bool
    institution_id: UUID | None
    pdm: str | None
    version: int
    received_at: datetime
    received_by: str


_COLUMNS = ", ".join(ComplaintView.__struct_fields__)
_LIST = Query(
    ComplaintView,
    f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY received_at DESC, id LIMIT $1 OFFSET $2",
)
_ONE = Query(ComplaintView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")


async def list_complaints(conn: DbConnection, *, limit: int, offset: int) -> list[ComplaintView]:
    return await _LIST.all(conn, limit, offset)


async def get_complaint(conn: DbConnection, complaint_id: UUID) -> ComplaintView | None:
    return await _ONE.one(conn, complaint_id)


class ComplaintsProjection:
    name = "complaints"
    tables = (TABLE,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: Complaint.Received, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {TABLE}
                 (tenant_id, id, channel, summary, concerns_child, institution_id, pdm,
                  version, received_at, received_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            envelope.aggregate_id,
            event.channel,
            event.summary,
            event.concerns_child,
            event.institution_id,
            event.pdm,
            envelope.aggregate_version,
            envelope.occurred_at,
            envelope.meta.actor,
        )
