"""One active instance per job across replicas: a PostgreSQL session advisory lock held on a
dedicated connection (released by PostgreSQL itself if the holder dies)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg


class LeaderLock:
    def __init__(self, database_url: str, name: str) -> None:
        self.database_url = database_url
        self.name = name
        self._conn: asyncpg.Connection[Any] | None = None

    async def acquire(self, stop: asyncio.Event, retry_seconds: float = 2.0) -> bool:
        """Wait until this instance holds the lock (True) or `stop` is set (False)."""
        conn = await asyncpg.connect(self.database_url)
        while not stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.name):
                self._conn = conn
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_seconds)
        await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            # Closing the session releases its advisory locks.
            await self._conn.close()
            self._conn = None
