"""Social workers read model."""

from __future__ import annotations

from datetime import date

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope


class WorkersProjection:
    name = "workers"
    tables = ("hr.workers",)

    async def apply(self, conn: DbConnection, event: EventEnvelope) -> None:
        if event.aggregate == "SocialWorker" and event.event == "Registered":
            await conn.execute(
                """INSERT INTO hr.workers
                     (tenant_id, id, full_name, birth_date, pdm, version, registered_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (tenant_id, id) DO NOTHING""",
                event.tenant,
                event.aggregate_id,
                event.data["full_name"],
                date.fromisoformat(event.data["birth_date"]),
                event.data.get("pdm"),
                event.aggregate_version,
                event.occurred_at,
            )
