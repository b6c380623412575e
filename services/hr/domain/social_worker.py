"""A social worker (pekerja sosial) serving MPKS institutions in a province."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from shared.domain.aggregate import AggregateRoot, event
from shared.domain.rules import check_rule


class CompetencyLevel(StrEnum):
    """Levels of the competency certificate under UU 14/2019."""

    ASISTEN = "asisten"
    GENERALIS = "generalis"
    SPESIALIS = "spesialis"


class MustBeAdult:
    field = "birth_date"

    def __init__(self, birth_date: date, today: date) -> None:
        self.birth_date = birth_date
        self.today = today

    def is_broken(self) -> bool:
        b, t = self.birth_date, self.today
        age = t.year - b.year - ((t.month, t.day) < (b.month, b.day))
        return age < 18

    @property
    def message(self) -> str:
        return "a social worker must be at least 18 years old"


class SocialWorker(AggregateRoot):
    @event("Registered")
    def __init__(self, full_name: str, birth_date: date, pdm: str | None) -> None:
        self.full_name = full_name
        self.birth_date = birth_date
        self.pdm = pdm
        self.integrity_pact_signed_on: date | None = None

    @classmethod
    def register(
        cls, *, full_name: str, birth_date: date, pdm: str | None, today: date
    ) -> SocialWorker:
        check_rule(MustBeAdult(birth_date, today))
        return cls(full_name=full_name, birth_date=birth_date, pdm=pdm)
