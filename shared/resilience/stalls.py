"""Stalls: a follower (a projection, a consumer) that cannot apply an event of one tenant
stops for that tenant only, at that event, and says why.

The event stays where it is (a follower never moves past a position it has not applied);
the other tenants and followers go on. A stalled tenant is retried with a growing pause (an
operator can ask for a retry at once, e.g. after deploying a fix: `mpks retry`), and shows in
`/health/ready` (degraded), in `mpks status` and in the metric `mpks_stalled_tenants`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

# Pauses between retries of a stalled tenant: quick at first (a transient failure, e.g. a
# deadlock, clears itself), then once a minute so a real bug costs little.
RETRY_PAUSES_SECONDS = (1, 5, 15, 60)


class Stall(msgspec.Struct, frozen=True, kw_only=True):
    follower: str
    tenant: str
    position: int
    message_id: str
    reason: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    retry_at: datetime


_COLUMNS = (
    "follower, tenant_id AS tenant, position, message_id, reason, attempts, "
    "first_failed_at, last_failed_at, retry_at"
)


class Stalls:
    """The stalls of one follower, in its service's schema."""

    def __init__(self, pool: asyncpg.Pool[Any], schema: str, follower: str) -> None:
        self.pool = pool
        self.schema = schema
        self.follower = follower

    async def all(self) -> dict[str, Stall]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM {self.schema}.stalls WHERE follower = $1", self.follower
        )
        return {r["tenant"]: Stall(**dict(r)) for r in rows}

    async def current(self) -> dict[str, bool]:
        """Stalled tenants, each with whether to leave it alone for now (its next retry is
        not due yet)."""
        rows = await self.pool.fetch(
            f"""SELECT tenant_id, retry_at > now() AS waiting FROM {self.schema}.stalls
                WHERE follower = $1""",
            self.follower,
        )
        return {r["tenant_id"]: r["waiting"] for r in rows}

    async def record(self, tenant: str, position: int, message_id: str, reason: str) -> None:
        pauses = "ARRAY[" + ",".join(str(p) for p in RETRY_PAUSES_SECONDS) + "]::int[]"
        await self.pool.execute(
            f"""INSERT INTO {self.schema}.stalls
                  (follower, tenant_id, position, message_id, reason, retry_at)
                VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => ({pauses})[1]))
                ON CONFLICT (follower, tenant_id) DO UPDATE SET
                  position = EXCLUDED.position,
                  message_id = EXCLUDED.message_id,
                  reason = EXCLUDED.reason,
                  attempts = stalls.attempts + 1,
                  last_failed_at = now(),
                  retry_at = now() + make_interval(secs => ({pauses})[
                    least(stalls.attempts + 1, {len(RETRY_PAUSES_SECONDS)})])""",
            self.follower,
            tenant,
            position,
            message_id,
            reason,
        )

    async def clear(self, tenant: str) -> None:
        await self.pool.execute(
            f"DELETE FROM {self.schema}.stalls WHERE follower = $1 AND tenant_id = $2",
            self.follower,
            tenant,
        )


async def all_stalls(conn: asyncpg.Connection[Any] | asyncpg.Pool[Any], schema: str) -> list[Stall]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {schema}.stalls ORDER BY follower, tenant_id")
    return [Stall(**dict(r)) for r in rows]


async def request_retry(
    conn: asyncpg.Connection[Any], schema: str, tenant: str | None = None
) -> int:
    """Make stalled tenants due now (after a fix): the running service retries them within
    its next pass. Returns how many stalls were affected."""
    result = await conn.execute(
        f"""UPDATE {schema}.stalls SET retry_at = now()
            WHERE $1::text IS NULL OR tenant_id = $1""",
        tenant,
    )
    return int(result.split()[-1])
