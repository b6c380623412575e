"""Only one replica of a service runs its relay: the others wait and take over."""

from __future__ import annotations

import asyncio

from shared.db.leader import LeaderLock
from shared.settings import Settings


async def test_second_instance_waits_until_the_leader_releases(settings: Settings) -> None:
    assert settings.database_url is not None
    first = LeaderLock(settings.database_url, "test-leader")
    second = LeaderLock(settings.database_url, "test-leader")
    never = asyncio.Event()
    assert await first.acquire(never)

    waiting = asyncio.create_task(second.acquire(never, retry_seconds=0.05))
    await asyncio.sleep(0.3)
    assert not waiting.done()

    await first.release()
    assert await asyncio.wait_for(waiting, 5)
    await second.release()


async def test_waiting_instance_gives_up_when_stopped(settings: Settings) -> None:
    assert settings.database_url is not None
    leader = LeaderLock(settings.database_url, "test-leader-stop")
    follower = LeaderLock(settings.database_url, "test-leader-stop")
    assert await leader.acquire(asyncio.Event())
    stop = asyncio.Event()
    waiting = asyncio.create_task(follower.acquire(stop, retry_seconds=0.05))
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is False
    await leader.release()
