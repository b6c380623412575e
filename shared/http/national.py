"""Reads across every province for the national council, with row-level security still on:
the read model's named query runs once per province, each in that tenant's own
transaction (`app.tenant_id` set, as for any tenant read), so no query ever sees two
tenants' rows at once and no login bypasses the policies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from shared.db.pool import DbConnection, DbPool
from shared.domain.organisation import PROVINCE
from shared.http.reads import scoped_transaction
from shared.tenancy import province_codes

T = TypeVar("T")
P = ParamSpec("P")
# Provinces read at a time: leaves the read-model pool to the other requests.
_AT_ONCE = 4


async def read_each_tenant(
    db: DbPool,
    query: Callable[Concatenate[DbConnection, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> dict[str, T]:
    """`query` in every province (whole province: national readers have no narrower
    scope), by province code in code order."""
    gate = asyncio.Semaphore(_AT_ONCE)
    results: dict[str, T] = {}

    async def one(tenant: str) -> None:
        async with gate, scoped_transaction(db, tenant, PROVINCE) as conn:
            results[tenant] = await query(conn, *args, **kwargs)

    await asyncio.gather(*(one(tenant) for tenant in province_codes()))
    return dict(sorted(results.items()))
