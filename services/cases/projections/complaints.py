"""Complaints read model: the projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.cases.domain.complaint import Channel, Complaint, ComplaintFlag
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.personal.erasure import DataSubject
from shared.personal.fields import ERASED
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
    flags: list[ComplaintFlag]
    # The complainant as a data subject (what an erasure names), and what they gave.
    complainant_subject: UUID | None
    complainant_name: str | None
    complainant_contact: str | None

    @property
    def restricted(self) -> bool:
        """A child's complaint is need-to-know: every read of it is access-logged."""
        return self.concerns_child


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


async def complaints_naming(conn: DbConnection, institution_id: UUID) -> list[UUID]:
    """The ids of the complaints about `institution_id`, oldest first."""
    rows = await conn.fetch(
        f"SELECT id FROM {TABLE} WHERE institution_id = $1 ORDER BY received_at, id",
        institution_id,
    )
    return [row["id"] for row in rows]


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
                  version, received_at, received_by, complainant_subject, complainant_name,
                  complainant_contact)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
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
            event.complainant_subject,
            event.complainant_name,
            event.complainant_contact,
        )

    @on.register
    async def _(
        self, event: Complaint.Flagged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # The version guard makes replaying an already-applied event a no-op.
        await conn.execute(
            f"""UPDATE {TABLE} SET flags = array_append(flags, $3), version = $4
                WHERE tenant_id = $1 AND id = $2 AND version < $4""",
            envelope.tenant,
            envelope.aggregate_id,
            event.flag,
            envelope.aggregate_version,
        )

    @on.register
    async def _(
        self, event: DataSubject.Erased, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""UPDATE {TABLE}
                SET complainant_name = CASE WHEN complainant_name IS NULL THEN NULL ELSE $3 END,
                    complainant_contact =
                      CASE WHEN complainant_contact IS NULL THEN NULL ELSE $3 END
                WHERE tenant_id = $1 AND complainant_subject = $2""",
            envelope.tenant,
            event.subject,
            ERASED,
        )
