"""Waking a service's log readers after a command commits, without a NOTIFY in the command's
transaction (PostgreSQL serialises the commits of notifying transactions cluster-wide).

The readers of this process (relay, projections) are woken at once, in memory. Readers in
other processes (replicas, worker processes) hear one `pg_notify` per short burst of
appends, sent in a transaction of its own; their poll stays the fallback for a wake-up that
never arrives (a failed notify, a listener reconnecting).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

# The shortest time between two notifies: appends in between share the next one.
NOTIFY_INTERVAL_SECONDS = 0.005


class AppendNotifier:
    """Coalesces the tenants whose logs changed into one `pg_notify` per burst on the
    service's channel (payload: the tenant, as the readers' `LogWatcher` expects)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        channel: str,
        *,
        interval: float = NOTIFY_INTERVAL_SECONDS,
    ) -> None:
        self.pool = pool
        self.channel = channel
        self.interval = interval
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self, tenant: str) -> None:
        self._pending.add(tenant)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Sends what is still pending, then stops."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        await self._send()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await self._send()
            # Appends during the pause share the next notify.
            await asyncio.sleep(self.interval)

    async def _send(self) -> None:
        self._wake.clear()
        if not self._pending:
            return
        tenants, self._pending = sorted(self._pending), set()
        try:
            await self.pool.execute(
                "SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t", self.channel, tenants
            )
        except Exception as exc:
            # Readers elsewhere find the events at their next poll.
            log.warning("notifying %s failed: %s", self.channel, exc)


def wake_all(*wakers: Callable[[str], None]) -> Callable[[str], None]:
    """One callback that passes a changed tenant to each of `wakers`."""

    def wake(tenant: str) -> None:
        for waker in wakers:
            waker(tenant)

    return wake
