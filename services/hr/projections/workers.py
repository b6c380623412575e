"""Social workers read model: the projection that writes it and the queries that read it."""

from __future__ import annotations

from datetime import date, datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.hr.domain.social_worker import SocialWorker
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.personal.erasure import DataSubject
from shared.personal.fields import ERASED
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

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: SocialWorker.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {TABLE}
                 (tenant_id, id, full_name, birth_date, pdm, version, registered_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            envelope.aggregate_id,
            event.full_name,
            event.birth_date,
            event.pdm,
            envelope.aggregate_version,
            envelope.occurred_at,
        )

    @on.register
    async def _(
        self, event: DataSubject.Erased, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # A worker is the subject of its own name.
        await conn.execute(
            f"UPDATE {TABLE} SET full_name = $3 WHERE tenant_id = $1 AND id = $2",
            envelope.tenant,
            event.subject,
            ERASED,
        )
