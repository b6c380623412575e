"""Reading read models over HTTP: always inside the tenant's RLS transaction, narrowed to the
caller's scope, one record with its version as ETag (what If-Match sends back), or a list.

The scope narrows in the database: each read-model table has a row-level security policy
naming its PDM and institution columns (`actor_scope` in the services' migrations), which
reads `app.scope_pdm` / `app.scope_institution`. So a list holds only the caller's rows and
a record outside its scope is simply not found, whatever the query says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

from litestar import Response

from shared.db.pool import DbConnection, DbPool, tenant_transaction
from shared.domain.errors import NotFound
from shared.domain.organisation import PROVINCE, Scope


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)
T = TypeVar("T")


@asynccontextmanager
async def scoped_transaction(db: DbPool, tenant: str, scope: Scope) -> AsyncIterator[DbConnection]:
    """The tenant's transaction, seeing only the rows inside `scope`."""
    async with tenant_transaction(db, tenant) as conn:
        # Unset (or empty, once a transaction-local setting has ended) is the whole province,
        # as projections need it: province-wide readers skip the round trip.
        if scope != PROVINCE:
            await conn.execute(
                """SELECT set_config('app.scope_pdm', $1, true),
                          set_config('app.scope_institution', $2, true)""",
                scope.pdm or "",
                str(scope.institution or ""),
            )
        yield conn


async def read_one(
    db: DbPool, tenant: str, scope: Scope, view: type[V], query: str, record_id: UUID, *, what: str
) -> Response[V]:
    async with scoped_transaction(db, tenant, scope) as conn:
        row = await conn.fetchrow(query, record_id)
    if row is None:
        raise NotFound(f"{what} {record_id} not found")
    record = view(**dict(row))
    return Response(record, headers={"ETag": f'"{record.version}"'})


async def read_many(
    db: DbPool, tenant: str, scope: Scope, view: type[T], query: str, *args: Any
) -> list[T]:
    async with scoped_transaction(db, tenant, scope) as conn:
        rows = await conn.fetch(query, *args)
    return [view(**dict(r)) for r in rows]
