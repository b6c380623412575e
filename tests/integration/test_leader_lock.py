"""Only one replica of a service runs its relay and projections: the others wait and take
over, also when the leader's session is cut; the log watcher survives a cut too."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

from shared.db.leader import LeaderLock
from shared.eventstore.logs import LogWatcher
from shared.settings import Settings
from tests.helpers import eventually


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


async def _terminate(database_url: str, query: str, *args: object) -> None:
    owner = await asyncpg.connect(database_url)
    try:
        pids = [r["pid"] for r in await owner.fetch(query, *args)]
        assert pids, "found no session to cut"
        for pid in pids:
            await owner.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await owner.close()


async def test_leader_whose_session_is_cut_knows_it_lost_and_another_takes_over(
    settings: Settings,
) -> None:
    assert settings.database_url is not None
    name = f"test-leader-cut-{secrets.token_hex(3)}"
    leader = LeaderLock(settings.database_url, name)
    assert await leader.acquire(asyncio.Event())
    assert not leader.lost.is_set()

    # E.g. a network cut or PostgreSQL failover: the server releases the lock.
    await _terminate(
        settings.database_url,
        """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND objid = ((hashtext($1)::bigint & 4294967295)::text)::oid""",
        name,
    )
    await asyncio.wait_for(leader.lost.wait(), 10)
    successor = LeaderLock(settings.database_url, name)
    assert await asyncio.wait_for(successor.acquire(asyncio.Event(), retry_seconds=0.05), 5)
    await successor.release()
    await leader.release()


async def test_log_watcher_listens_again_after_its_connection_is_cut(settings: Settings) -> None:
    assert settings.database_url is not None
    channel = f"test_watch_{secrets.token_hex(3)}"
    watcher = LogWatcher(settings.database_url, channel)
    changes = watcher.subscribe()
    await watcher.start()
    try:
        await _terminate(
            settings.database_url,
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND query = $1""",
            f'LISTEN "{channel}"',
        )

        async def listening_again() -> bool:
            # A new connection, not the old one before its end was noticed.
            return watcher.connections == 2 and watcher.listening

        await eventually(listening_again, within=10)
        # The notifications nobody heard while it reconnected: readers look everywhere.
        assert await changes.wait(poll_interval=5) is None
        owner = await asyncpg.connect(settings.database_url)
        try:
            await owner.execute(f"NOTIFY {channel}, '35'")
        finally:
            await owner.close()
        assert await changes.wait(poll_interval=5) == {"35"}
    finally:
        await watcher.stop()


async def test_other_channels_ride_on_the_watchers_connection_and_hear_of_a_cut(
    settings: Settings,
) -> None:
    """Erasures are announced on a channel of their own (`shared.personal.erasure`): its
    payloads reach the listener, and after a cut connection it is told some may be lost."""
    assert settings.database_url is not None
    channel = f"test_watch_{secrets.token_hex(3)}"
    heard: list[str] = []
    missed: list[bool] = []
    watcher = LogWatcher(settings.database_url, channel)
    watcher.also_listen(f"{channel}_other", heard.append, lambda: missed.append(True))
    await watcher.start()
    try:
        owner = await asyncpg.connect(settings.database_url)
        try:
            await owner.execute(f"NOTIFY {channel}_other, '35/s-1'")

            async def arrived() -> bool:
                return heard == ["35/s-1"]

            await eventually(arrived, within=5)
            assert missed == []
            # The connection's last statement is the LISTEN of the other channel.
            await _terminate(
                settings.database_url,
                """SELECT pid FROM pg_stat_activity
                   WHERE datname = current_database() AND query = $1""",
                f'LISTEN "{channel}_other"',
            )

            async def told_and_listening() -> bool:
                return missed == [True] and watcher.connections == 2 and watcher.listening

            await eventually(told_and_listening, within=10)
            await owner.execute(f"NOTIFY {channel}_other, '31/s-2'")

            async def arrived_again() -> bool:
                return heard == ["35/s-1", "31/s-2"]

            await eventually(arrived_again, within=5)
        finally:
            await owner.close()
    finally:
        await watcher.stop()
