"""HR's use cases in memory: registering a worker judges the birth date by the clock port,
not the machine's."""

from __future__ import annotations

from datetime import date

import pytest

from services.hr.application.register_worker import RegisterWorker
from services.hr.domain.social_worker import SocialWorker
from shared.domain.errors import RuleBroken
from shared.eventstore.context import CommandContext
from tests.unit.fakes import MemoryStore, memory_bus

CTX = CommandContext(tenant="35", actor="hr-officer", correlation_id="c")


async def test_the_worker_is_judged_adult_on_the_clocks_day() -> None:
    store = MemoryStore()
    worker = RegisterWorker(full_name="Siti Aminah", birth_date=date(2008, 6, 1), pdm="3578")
    young = memory_bus("services.hr.application", store, today=date(2026, 5, 31))
    with pytest.raises(RuleBroken, match="at least 18"):
        await young.execute(worker, CTX)
    adult = memory_bus("services.hr.application", store, today=date(2026, 6, 1))
    await adult.execute(worker, CTX)
    [registered] = store.events_of("35")
    assert isinstance(registered, SocialWorker.Registered)
    assert registered.birth_date == date(2008, 6, 1)


async def test_a_birth_date_after_the_clocks_day_is_refused() -> None:
    bus = memory_bus("services.hr.application", MemoryStore(), today=date(2026, 11, 24))
    with pytest.raises(RuleBroken, match="in the future"):
        await bus.execute(
            RegisterWorker(full_name="Siti Aminah", birth_date=date(2026, 11, 25)), CTX
        )
