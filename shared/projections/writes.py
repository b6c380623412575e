"""A projection batch's writes, sent together.

Read-model handlers write with `conn.execute`, one statement per event and read model: a
registration touches four read models, so a batch of events cost four round trips per event
(and four trips through asyncpg's Python side). In a batch, those statements are held and sent
at its end: the consecutive ones with the same SQL (one handler's writes for the batch's events)
as one pipelined `executemany`, which PostgreSQL still runs row by row, in order.

What a handler reads still sees every write before it: a read (`fetch…`) first sends all that
is held, of every read model, in the order it was issued. Read models own disjoint tables, so
sending one's held writes before another's changes no result; within one read model the order
is kept.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.resilience.faults import is_outage


class WriteFailed(Exception):
    """Held writes failed when sent; `event` is the last event they came from (an earlier
    one of the same statement may be at fault: the caller narrows it down)."""

    def __init__(self, event: EventEnvelope, cause: Exception) -> None:
        super().__init__(str(cause))
        self.event = event
        self.cause = cause


class HeldWrites:
    """The batch's held statements, per read model, in the order issued."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn
        self._held: dict[str, list[tuple[str, tuple[Any, ...], EventEnvelope]]] = {}

    def writer(self, reader: str, envelope: EventEnvelope) -> BatchConnection:
        return BatchConnection(self, self._held.setdefault(reader, []), envelope)

    async def send(self) -> None:
        """Every held statement, one `executemany` per run of the same SQL."""
        for held in self._held.values():
            start = 0
            while start < len(held):
                sql = held[start][0]
                end = start + 1
                while end < len(held) and held[end][0] == sql:
                    end += 1
                run = held[start:end]
                try:
                    if len(run) == 1:
                        await self.conn.execute(sql, *run[0][1])
                    else:
                        await self.conn.executemany(sql, [args for _, args, _ in run])
                except Exception as exc:
                    held.clear()
                    if is_outage(exc):
                        raise
                    raise WriteFailed(run[-1][2], exc) from exc
                start = end
            held.clear()


class BatchConnection:
    """What a read-model handler gets as its connection in a batch: `execute` is held,
    reads send what is held first. Only these methods: a handler needing another one
    fails loudly here rather than bypassing the order."""

    def __init__(
        self,
        writes: HeldWrites,
        held: list[tuple[str, tuple[Any, ...], EventEnvelope]],
        envelope: EventEnvelope,
    ) -> None:
        self._writes = writes
        self._held = held
        self._envelope = envelope

    async def execute(self, query: str, *args: Any) -> str:
        self._held.append((query, args, self._envelope))
        # asyncpg's status tag ("INSERT 0 1") is not known until sent; no handler reads it.
        return ""

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        await self._writes.send()
        return await self._writes.conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        await self._writes.send()
        return await self._writes.conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self._writes.send()
        return await self._writes.conn.fetchval(query, *args)
