"""Reads a service's tenant logs with asyncpg: for the relay, projections and the events feed.

Commit order equals notification order (the library locks the table per append), so reading
`notification_id > position` never skips a late commit; ids may have gaps, so nothing here
assumes they are consecutive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import asyncpg

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope, envelope_from_row
from shared.eventstore.stores import events_table, tenant_schema
from shared.tenancy import province_codes


class TenantLogs:
    def __init__(self, service: str, tenants: Iterable[str] | None = None) -> None:
        self.service = service
        self.tenants = sorted(tenants if tenants is not None else province_codes())
        self.channel = events_table(service)
        table = events_table(service)
        self._heads_sql = " UNION ALL ".join(
            f"SELECT '{t}' AS tenant, (SELECT coalesce(max(notification_id), 0) "
            f"FROM {tenant_schema(service, t)}.{table}) AS head"
            for t in self.tenants
        )

    def _table(self, tenant: str) -> str:
        if tenant not in province_codes():
            raise KeyError(f"unknown tenant {tenant!r}")
        return f"{tenant_schema(self.service, tenant)}.{events_table(self.service)}"

    async def heads(self, conn: DbConnection) -> dict[str, int]:
        return {r["tenant"]: r["head"] for r in await conn.fetch(self._heads_sql)}

    async def head(self, conn: DbConnection, tenant: str) -> int:
        value = await conn.fetchval(
            f"SELECT coalesce(max(notification_id), 0) FROM {self._table(tenant)}"
        )
        return int(value)

    async def read(
        self,
        conn: DbConnection,
        tenant: str,
        *,
        after: int,
        limit: int,
        until: int | None = None,
    ) -> list[EventEnvelope]:
        """Events with position > after (and <= until), each naming the position of the
        event before it in the log, so a reader can prove it missed nothing."""
        table = self._table(tenant)
        rows = await conn.fetch(
            f"""SELECT notification_id, originator_id, originator_version, topic, state
                FROM {table}
                WHERE notification_id >= (
                    SELECT coalesce(max(notification_id), 0) FROM {table}
                    WHERE notification_id <= $1)
                  AND ($3::bigint IS NULL OR notification_id <= $3)
                ORDER BY notification_id LIMIT $2""",
            after,
            limit + 1,
            until,
        )
        envelopes: list[EventEnvelope] = []
        previous: int | None = None
        for row in rows:
            position = row["notification_id"]
            if position > after:
                envelopes.append(
                    envelope_from_row(
                        service=self.service,
                        tenant=tenant,
                        position=position,
                        previous_position=previous,
                        aggregate_id=row["originator_id"],
                        aggregate_version=row["originator_version"],
                        topic=row["topic"],
                        state=row["state"],
                    )
                )
            previous = position
        return envelopes[:limit]


class LogWatcher:
    """Wakes readers as soon as any tenant of the service appends (PostgreSQL NOTIFY on the
    service's channel), with a poll as fallback in case a notification is lost."""

    def __init__(self, database_url: str, channel: str) -> None:
        self.database_url = database_url
        self.channel = channel
        self._readers: list[asyncio.Event] = []
        self._conn: asyncpg.Connection[Any] | None = None

    def subscribe(self) -> asyncio.Event:
        """Each reader gets its own flag, so one reader's wake-up never eats another's."""
        flag = asyncio.Event()
        self._readers.append(flag)
        return flag

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.database_url)
        await self._conn.add_listener(self.channel, self._on_notify)

    def _on_notify(self, *_: object) -> None:
        for flag in self._readers:
            flag.set()

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


async def wait_for_change(
    flag: asyncio.Event, poll_interval: float, coalesce: float = 0.01
) -> None:
    """Return when the log changed (or after `poll_interval`). A short pause after a wake-up
    lets a burst of commits be read in one batch instead of one query round per commit."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(flag.wait(), poll_interval)
        await asyncio.sleep(coalesce)
    flag.clear()
