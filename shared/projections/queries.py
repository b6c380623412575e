"""Named queries of a read model. The module that owns a read model holds its table, the
projection writing it and the reads of it (`list_institutions(conn, ...)`), each a `Query`:
its SQL and the Struct a row becomes. Controllers call the named queries and write no SQL.

A query runs on the connection it is given: for a request, `shared.http.reads` opens it
(tenant transaction, the caller's scope, a bounded wait for the connection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.db.pool import DbConnection

T = TypeVar("T")


@dataclass(frozen=True)
class Query(Generic[T]):
    view: type[T]
    sql: str

    async def all(self, conn: DbConnection, *args: Any) -> list[T]:
        return [self.view(**dict(row)) for row in await conn.fetch(self.sql, *args)]

    async def one(self, conn: DbConnection, *args: Any) -> T | None:
        row = await conn.fetchrow(self.sql, *args)
        return None if row is None else self.view(**dict(row))

    async def rows(self, conn: DbConnection, *args: Any) -> AsyncIterator[T]:
        """Every row, through a server-side cursor (`conn` must be in a transaction): a
        download holds a batch in memory, not the whole list."""
        async for row in conn.cursor(self.sql, *args, prefetch=500):
            yield self.view(**dict(row))
