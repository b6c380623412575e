"""Projection lag and cross-service lag of sampled commands, measured by polling the tables.

A sampled command's clock starts when its 201 reaches the client (its transaction committed
before the answer left, so this under-states the lag by the answer's trip back, well under a
millisecond here) and stops at the first poll that finds its row: in `registry.institutions`
(the registry's projection) and in `cases.institution_directory` (cases, fed by the
registry's stream over NATS). One connection polls every pending row of both tables in one
query every POLL_SECONDS, so a figure is late by at most that much (plus one poll's round
trip).
"""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

import asyncpg

POLL_SECONDS = 0.002

METHOD = (
    "from the client receiving a sampled command's 201 to its row in registry.institutions "
    "(projection) / cases.institution_directory (cross-service, over NATS), polled every "
    f"{POLL_SECONDS * 1000:g} ms on one connection (figures late by at most that plus one "
    "poll's round trip)"
)

_FOUND = """
    SELECT 'projection' AS kind, id AS row_id FROM registry.institutions
     WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))
    UNION ALL
    SELECT 'cross-service', institution_id FROM cases.institution_directory
     WHERE (tenant_id, institution_id) IN (SELECT * FROM unnest($3::text[], $4::uuid[]))
"""


class LagProbe:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        # kind -> row -> (tenant, when its command was answered)
        self.pending: dict[str, dict[UUID, tuple[str, float]]] = {
            "projection": {},
            "cross-service": {},
        }
        self.lags: dict[str, list[float]] = {"projection": [], "cross-service": []}

    def sample(self, tenant: str, row_id: UUID, answered_at: float) -> None:
        for waiting in self.pending.values():
            waiting[row_id] = (tenant, answered_at)

    async def poll(self, stop: asyncio.Event) -> None:
        """Polls until `stop` is set."""
        while not stop.is_set():
            await self._poll_once()
            await asyncio.sleep(POLL_SECONDS)

    async def drain(self, within: float) -> dict[str, int]:
        """Polls until every sample is seen or `within` seconds pass; the unseen per kind."""
        deadline = time.perf_counter() + within
        while any(self.pending.values()) and time.perf_counter() < deadline:
            await self._poll_once()
            await asyncio.sleep(POLL_SECONDS)
        return {kind: len(waiting) for kind, waiting in self.pending.items()}

    async def _poll_once(self) -> None:
        if not any(self.pending.values()):
            return
        args: list[list[object]] = []
        for waiting in self.pending.values():
            args += [[tenant for tenant, _ in waiting.values()], list(waiting)]
        # A row this poll finds was visible by the time it was sent.
        seen_at = time.perf_counter()
        rows = await self.conn.fetch(_FOUND, *args)
        for row in rows:
            _, answered_at = self.pending[row["kind"]].pop(row["row_id"])
            self.lags[row["kind"]].append(seen_at - answered_at)
