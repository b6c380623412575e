"""asyncpg pools for read models, with row-level security applied per transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.db.roles import check_app_login
from shared.resilience.faults import CONNECTION_WAIT_SECONDS

# asyncpg's classes are generic only in its stubs; Litestar resolves handler signatures at
# run time, so the aliases must be real types there too.
if TYPE_CHECKING:
    DbConnection = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
    DbPool = asyncpg.Pool[Any]
else:
    DbConnection = asyncpg.Connection | PoolConnectionProxy
    DbPool = asyncpg.Pool


def labelled(database_url: str, application_name: str) -> str:
    """The URL with `application_name` set, so each service's connections can be told
    apart in pg_stat_activity (by operators, and by the connection benchmark)."""
    parts = urlsplit(database_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", application_name))
    return urlunsplit(parts._replace(query=urlencode(query)))


async def create_pool(
    database_url: str,
    *,
    max_size: int,
    min_size: int = 1,
    server_settings: dict[str, str] | None = None,
    keep_session: bool = False,
    statement_timeout: float | None = None,
) -> asyncpg.Pool[Any]:
    """A pool on the services' own login (`shared.db.roles`), refused if that login is one
    row-level security would not bind.

    asyncpg's default reset runs on every release (`RESET ALL`, `UNLISTEN *`, advisory
    unlocks, `CLOSE ALL`), so nothing a request sets at session level — a stray
    `SET app.tenant_id`, a `search_path` — reaches the next holder of the connection. That
    is one round trip per release (~50 µs here, see the README); the login refuses to
    become any other role, so no `SET ROLE` has to be undone.

    `keep_session` skips that reset, for a pool whose every statement runs in a transaction
    of its own and sets nothing beyond it (the event store's): asyncpg still rolls back a
    transaction left open.

    `statement_timeout` bounds the wait for each statement's answer (asyncpg's
    `command_timeout`; TimeoutError, a 503 at the HTTP edge): the server cannot enforce a
    timeout when it is the one that stopped answering.
    """
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings=server_settings,
        reset=_keep_session if keep_session else None,
        command_timeout=statement_timeout,
        # Tenant logs are per schema, so statements differ per tenant: keep them all.
        statement_cache_size=4096,
        # A connect nobody answers (a host gone from the network) fails like a refused one.
        timeout=CONNECTION_WAIT_SECONDS,
    )
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await check_app_login(conn)
    except BaseException:
        await pool.close()
        raise
    return pool


async def _keep_session(_conn: asyncpg.Connection[Any]) -> None:
    """No reset beyond asyncpg's own (see `create_pool`)."""


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool[Any], tenant: str, *, wait: float | None = None
) -> AsyncIterator[DbConnection]:
    """A transaction that sees and writes only `tenant`'s rows (transaction-local setting,
    so a pooled connection never carries one tenant's setting into another's request).

    `wait` bounds the wait for a connection (TimeoutError, which the HTTP edge answers with
    a 503): requests pass it, background work that must not fail under load does not."""
    async with pool.acquire(timeout=wait) as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        yield conn
