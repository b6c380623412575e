"""Social workers read model, now and as of any date (every version of every row with the
period it was valid): the projection that writes it and the queries that read it."""

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
from shared.projections.temporal import TemporalTable

TABLE = "hr.workers"


class WorkerView(msgspec.Struct):
    id: UUID
    full_name: str
    birth_date: date
    pdm: str | None
    version: int
    registered_at: datetime


_COLUMNS = ", ".join(WorkerView.__struct_fields__)
REGISTER = TemporalTable(TABLE, ["tenant_id", *WorkerView.__struct_fields__])
_LIST = Query(
    WorkerView, f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY full_name, id LIMIT $1 OFFSET $2"
)
_LIST_AS_OF = Query(
    WorkerView,
    f"""SELECT {_COLUMNS} FROM {REGISTER.history} WHERE {REGISTER.valid_at("$3")}
        ORDER BY full_name, id LIMIT $1 OFFSET $2""",
)
_ONE = Query(WorkerView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")


async def list_workers(
    conn: DbConnection, *, limit: int, offset: int, as_of: datetime | None = None
) -> list[WorkerView]:
    """The social workers now, or as they were at `as_of`."""
    if as_of is None:
        return await _LIST.all(conn, limit, offset)
    return await _LIST_AS_OF.all(conn, limit, offset, as_of)


async def get_worker(conn: DbConnection, worker_id: UUID) -> WorkerView | None:
    return await _ONE.one(conn, worker_id)


class WorkersProjection:
    name = "workers"
    tables = REGISTER.tables

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: SocialWorker.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await REGISTER.insert(
            conn,
            envelope,
            {
                "full_name": event.full_name,
                "birth_date": event.birth_date,
                "pdm": event.pdm,
                "registered_at": envelope.occurred_at,
            },
        )

    @on.register
    async def _(
        self, event: DataSubject.Erased, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # A worker is the subject of its own name, in every version of the record.
        for table in REGISTER.tables:
            await conn.execute(
                f"UPDATE {table} SET full_name = $3 WHERE tenant_id = $1 AND id = $2",
                envelope.tenant,
                event.subject,
                ERASED,
            )
