"""Every background task of a service (relay, projections, consumers, watchers) runs under a
supervisor: if it crashes it is restarted with a growing pause, and health shows it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from shared.resilience.faults import describe

log = logging.getLogger(__name__)

RESTART_PAUSES_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A task that ran this long before crashing counts as having recovered: pauses start over.
HEALTHY_AFTER_SECONDS = 60.0


@dataclass
class TaskState:
    name: str
    running: bool = False
    restarts: int = 0
    last_error: str | None = None


@dataclass
class Supervisor:
    stop: asyncio.Event
    on_restart: Callable[[str], None] = lambda _name: None
    states: dict[str, TaskState] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def state(self, name: str) -> TaskState:
        return self.states.setdefault(name, TaskState(name))

    def spawn(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._tasks.append(asyncio.create_task(self._run(name, work), name=name))

    async def _run(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        state = self.state(name)
        failures = 0
        while not self.stop.is_set():
            started = time.monotonic()
            state.running = True
            try:
                await work()
                return  # it returns only when asked to stop
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started > HEALTHY_AFTER_SECONDS:
                    failures = 0
                delay = RESTART_PAUSES_SECONDS[min(failures, len(RESTART_PAUSES_SECONDS) - 1)]
                failures += 1
                state.restarts += 1
                state.last_error = describe(exc)
                self.on_restart(name)
                log.error(
                    "background task %s crashed; restarting in %.1fs", name, delay, exc_info=exc
                )
            finally:
                state.running = False
            await pause(self.stop, delay)

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def problems(self) -> dict[str, str]:
        """Tasks that are down (between a crash and their restart), with why."""
        return {
            state.name: f"restarting after: {state.last_error}"
            for state in self.states.values()
            if not state.running and not self.stop.is_set()
        }


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
