"""Complaints read model."""

from __future__ import annotations

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope


class ComplaintsProjection:
    name = "complaints"
    tables = ("cases.complaints",)

    async def apply(self, conn: DbConnection, event: EventEnvelope) -> None:
        if event.aggregate == "Complaint" and event.event == "Received":
            data = event.data
            await conn.execute(
                """INSERT INTO cases.complaints
                     (tenant_id, id, channel, summary, concerns_child, institution_id, pdm,
                      version, received_at, received_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                   ON CONFLICT (tenant_id, id) DO NOTHING""",
                event.tenant,
                event.aggregate_id,
                data["channel"],
                data["summary"],
                data["concerns_child"],
                data.get("institution_id"),
                data.get("pdm"),
                event.aggregate_version,
                event.occurred_at,
                event.meta.actor,
            )
