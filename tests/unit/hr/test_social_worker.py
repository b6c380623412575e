"""HR's social workers, in memory: who may be registered and where a worker sits."""

from __future__ import annotations

from datetime import date

import pytest

from services.hr.domain.social_worker import SocialWorker
from shared.domain.errors import RuleBroken
from shared.domain.organisation import PROVINCE


@pytest.mark.parametrize(
    ("birth_date", "today", "adult"),
    [
        (date(2000, 3, 15), date(2018, 3, 14), False),  # the day before the 18th birthday
        (date(2000, 3, 15), date(2018, 3, 15), True),  # the 18th birthday
        (date(2000, 3, 15), date(2018, 3, 16), True),
        (date(2004, 2, 29), date(2022, 2, 28), False),  # born on a leap day
        (date(2004, 2, 29), date(2022, 3, 1), True),
        (date(2010, 1, 1), date(2024, 6, 1), False),
    ],
)
def test_a_social_worker_must_be_at_least_18(birth_date: date, today: date, adult: bool) -> None:
    def hire() -> SocialWorker:
        return SocialWorker.register(
            tenant="51", full_name="Ahmad Fauzi", birth_date=birth_date, pdm="5171", today=today
        )

    if adult:
        assert hire().birth_date == birth_date
    else:
        with pytest.raises(RuleBroken) as raised:
            hire()
        assert raised.value.field == "birth_date"


@pytest.mark.parametrize(
    ("birth_date", "accepted"),
    [
        (date(1, 1, 1), False),
        (date(1900, 1, 1), False),
        (date(1925, 11, 24), False),  # 101 today
        (date(1925, 11, 25), True),  # 101 tomorrow: the oldest accepted
        (date(1970, 5, 5), True),
        (date(2026, 11, 25), False),  # tomorrow
    ],
)
def test_a_birth_date_is_plausible(birth_date: date, accepted: bool) -> None:
    def hire() -> SocialWorker:
        return SocialWorker.register(
            tenant="31",
            full_name="Ahmad",
            birth_date=birth_date,
            pdm=None,
            today=date(2026, 11, 24),
        )

    if accepted:
        assert hire().birth_date == birth_date
    else:
        with pytest.raises(RuleBroken) as raised:
            hire()
        assert raised.value.field == "birth_date"


def test_a_worker_without_a_pdm_serves_the_whole_province() -> None:
    worker = SocialWorker.register(
        tenant="31",
        full_name="Ahmad",
        birth_date=date(1980, 1, 1),
        pdm=None,
        today=date(2026, 1, 1),
    )
    assert worker.scope == PROVINCE
