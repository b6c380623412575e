"""A social worker (pekerja sosial) serving MPKS institutions in a province."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from shared.domain.aggregate import AggregateRoot, event
from shared.domain.organisation import PdmMustBeInProvince, Scope
from shared.domain.rules import check_rule
from shared.personal.fields import Personal

# Nobody is still registering as a social worker past this age: an older birth date is a
# typing error (0001-01-01, a year with a digit missing), not a person.
OLDEST_AGE = 100


class CompetencyLevel(StrEnum):
    """Levels of the competency certificate under UU 14/2019."""

    ASISTEN = "asisten"
    GENERALIS = "generalis"
    SPESIALIS = "spesialis"


def _age(birth_date: date, today: date) -> int:
    b, t = birth_date, today
    return t.year - b.year - ((t.month, t.day) < (b.month, b.day))


class BirthDateMustBePlausible:
    """Not in the future and not more than a century ago."""

    field = "birth_date"

    def __init__(self, birth_date: date, today: date) -> None:
        self.birth_date = birth_date
        self.today = today

    def is_broken(self) -> bool:
        return self.birth_date > self.today or _age(self.birth_date, self.today) > OLDEST_AGE

    @property
    def message(self) -> str:
        if self.birth_date > self.today:
            return f"the birth date {self.birth_date} is in the future"
        return f"the birth date {self.birth_date} would make the worker older than {OLDEST_AGE}"


class MustBeAdult:
    field = "birth_date"

    def __init__(self, birth_date: date, today: date) -> None:
        self.birth_date = birth_date
        self.today = today

    def is_broken(self) -> bool:
        return _age(self.birth_date, self.today) < 18

    @property
    def message(self) -> str:
        return "a social worker must be at least 18 years old"


class SocialWorker(AggregateRoot):
    class Registered(AggregateRoot.Created):
        """A social worker joined the province's register.

        Version 2 made `full_name` personal data of the worker: stored and published
        sealed (`shared.personal`), erased with the worker's key. Version 1 names were
        recorded in plaintext and read as they are."""

        full_name: Annotated[str, Personal(subject="originator_id")]
        birth_date: date
        pdm: str | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """The fields are the same; only how `full_name` is stored changed."""

    @event(Registered)
    def __init__(self, full_name: str, birth_date: date, pdm: str | None) -> None:
        self.full_name = full_name
        self.birth_date = birth_date
        self.pdm = pdm
        self.integrity_pact_signed_on: date | None = None

    @classmethod
    def register(
        cls, *, tenant: str, full_name: str, birth_date: date, pdm: str | None, today: date
    ) -> SocialWorker:
        check_rule(BirthDateMustBePlausible(birth_date, today))
        check_rule(MustBeAdult(birth_date, today))
        if pdm is not None:
            check_rule(PdmMustBeInProvince(pdm, tenant))
        return cls(full_name=full_name, birth_date=birth_date, pdm=pdm)

    @property
    def scope(self) -> Scope:
        """A worker without a PDM serves the whole province."""
        return Scope(pdm=self.pdm)
