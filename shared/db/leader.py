"""One active instance per job across replicas: a PostgreSQL session advisory lock held on a
dedicated connection (released by PostgreSQL itself if the holder dies)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from shared.resilience.faults import describe

log = logging.getLogger(__name__)


class LeaderLock:
    def __init__(self, database_url: str, name: str) -> None:
        self.database_url = database_url
        self.name = name
        # Set when the session holding the lock ends: PostgreSQL has released the lock, and
        # another instance may take it at once, so the work must stop.
        self.lost = asyncio.Event()
        # Why the lock cannot be asked for now (PostgreSQL unreachable), for health: the job
        # is not running anywhere if every instance waits so. None: held, or held elsewhere.
        self.waiting_on: str | None = None
        self._conn: asyncpg.Connection[Any] | None = None

    async def acquire(self, stop: asyncio.Event, retry_seconds: float = 2.0) -> bool:
        """Wait until this instance holds the lock (True) or `stop` is set (False)."""
        conn: asyncpg.Connection[Any] | None = None
        while not stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.database_url)
                held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.name)
                self.waiting_on = None
                if held:
                    self.lost.clear()
                    conn.add_termination_listener(lambda _: self.lost.set())
                    self._conn = conn
                    return True
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("leader lock %s: %s; retrying", self.name, exc)
                self.waiting_on = f"leader lock: {describe(exc)}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), retry_seconds)
        if conn is not None:
            await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            # Closing the session releases its advisory locks.
            await self._conn.close()
            self._conn = None
