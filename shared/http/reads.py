"""Reading read models over HTTP: always inside the tenant's RLS transaction, one record
with its version as ETag (what If-Match sends back), or a list."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar
from uuid import UUID

from litestar import Response

from shared.db.pool import DbPool, tenant_transaction
from shared.domain.errors import NotFound


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)
T = TypeVar("T")


async def read_one(
    db: DbPool, tenant: str, view: type[V], query: str, record_id: UUID, *, what: str
) -> Response[V]:
    async with tenant_transaction(db, tenant) as conn:
        row = await conn.fetchrow(query, record_id)
    if row is None:
        raise NotFound(f"{what} {record_id} not found")
    record = view(**dict(row))
    return Response(record, headers={"ETag": f'"{record.version}"'})


async def read_many(db: DbPool, tenant: str, view: type[T], query: str, *args: Any) -> list[T]:
    async with tenant_transaction(db, tenant) as conn:
        rows = await conn.fetch(query, *args)
    return [view(**dict(r)) for r in rows]
