"""Background tasks are supervised: a crash restarts the task after a pause, health says
so meanwhile, and a task asked to stop is not restarted."""

from __future__ import annotations

import asyncio

import pytest

from shared.resilience import supervisor as supervision
from shared.resilience.supervisor import Supervisor


async def test_a_crashed_task_is_restarted_and_health_shows_it_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervision, "RESTART_PAUSES_SECONDS", (0.2, 0.2))
    stop = asyncio.Event()
    restarted: list[str] = []
    runs = 0
    healthy = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ConnectionRefusedError("PostgreSQL is down")
        healthy.set()
        await stop.wait()

    tasks = Supervisor(stop, on_restart=restarted.append)
    tasks.spawn("relay", flaky)
    await asyncio.sleep(0.05)
    assert tasks.problems() == {
        "relay": "restarting after: ConnectionRefusedError: PostgreSQL is down"
    }
    await asyncio.wait_for(healthy.wait(), 5)
    assert runs == 3
    assert restarted == ["relay", "relay"]
    assert tasks.problems() == {}
    assert tasks.state("relay").restarts == 2

    stop.set()
    await asyncio.wait_for(tasks.shutdown(), 5)
    assert runs == 3
