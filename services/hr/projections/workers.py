"""Social workers read model: the projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query

TABLE = "hr.workers"


class WorkerView(msgspec.Struct):
    id: UUID
    full_name: str
    birth_date: date
    pdm: str | None
    version: int
    registered_at: datetime


_COLUMNS = ", ".join(WorkerView.__struct_fields__)
_LIST = Query(
    WorkerView, f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY full_name, id LIMIT $1 OFFSET $2"
)
_ONE = Query(WorkerView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")


async def list_workers(conn: DbConnection, *, limit: int, offset: int) -> list[WorkerView]:
    return await _LIST.all(conn, limit, offset)


async def get_worker(conn: DbConnection, worker_id: UUID) -> WorkerView | None:
    return await _ONE.one(conn, worker_id)


class WorkersProjection:
    name = "workers"
    tables = (TABLE,)

    async def apply(self, conn: DbConnection, event: EventEnvelope) -> None:
        if event.aggregate == "SocialWorker" and event.event == "Registered":
            await conn.execute(
                f"""INSERT INTO {TABLE}
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
