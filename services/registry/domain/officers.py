"""The officers who run an institution (pengurus): who holds which post for which term, and
the rules of appointing and dismissing them. Their names, NIK and phone numbers are personal
data: they travel sealed in the events and are not kept here (only what the rules need)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from enum import StrEnum
from uuid import UUID

import msgspec

from shared.domain.labels import Label, labels


class OfficerRole(StrEnum):
    HEAD = "head"  # kepala
    FINANCE_OFFICER = "finance_officer"  # kepala urusan keuangan
    SECRETARY = "secretary"  # sekretaris
    PROGRAMME_COORDINATOR = "programme_coordinator"  # koordinator program
    CARE_COORDINATOR = "care_coordinator"  # koordinator pengasuhan
    ADMINISTRATOR = "administrator"  # tata usaha


OFFICER_ROLES = labels(
    "officer_role",
    OfficerRole,
    {
        OfficerRole.HEAD: Label("Kepala", "Head"),
        OfficerRole.FINANCE_OFFICER: Label("Kepala urusan keuangan", "Finance officer"),
        OfficerRole.SECRETARY: Label("Sekretaris", "Secretary"),
        OfficerRole.PROGRAMME_COORDINATOR: Label("Koordinator program", "Programme coordinator"),
        OfficerRole.CARE_COORDINATOR: Label("Koordinator pengasuhan", "Care coordinator"),
        OfficerRole.ADMINISTRATOR: Label("Tata usaha", "Administrator"),
    },
)


# Posts one person holds at a time (MPKS rule 268/1.7/A/2023: one head, one finance
# officer); the others may be shared.
SINGLE_HOLDER = frozenset({OfficerRole.HEAD, OfficerRole.FINANCE_OFFICER})
_ROLE_NAMES = {
    OfficerRole.HEAD: "head (kepala)",
    OfficerRole.FINANCE_OFFICER: "finance officer (kepala urusan keuangan)",
}


class Term(msgspec.Struct, frozen=True, kw_only=True):
    """One appointment: `start` and `end` are the first and last day of the term;
    a dismissal ends it early, from `dismissed_on` (the first day not served)."""

    officer_id: UUID
    role: OfficerRole
    start: date
    end: date
    dismissed_on: date | None = None

    @property
    def ends_before(self) -> date:
        """The first day the officer no longer serves."""
        natural = self.end + timedelta(days=1)
        if self.dismissed_on is None:
            return natural
        return min(natural, max(self.start, self.dismissed_on))

    def overlaps(self, start: date, end: date) -> bool:
        return self.start <= end and start < self.ends_before


def term_of(terms: Iterable[Term], officer_id: UUID) -> Term | None:
    return next((t for t in terms if t.officer_id == officer_id), None)


class TermMustEndAfterStart:
    field = "term_end"

    def __init__(self, start: date, end: date) -> None:
        self.start = start
        self.end = end

    def is_broken(self) -> bool:
        return self.end <= self.start

    @property
    def message(self) -> str:
        return f"the term must end after it starts ({self.start}), not on {self.end}"


class OneHolderAtATime:
    """A head or a finance officer is appointed only when no other holds the post during
    the new term: the one before is dismissed first, or the new term starts after theirs."""

    field = "role"

    def __init__(self, role: OfficerRole, start: date, end: date, terms: Iterable[Term]) -> None:
        self.role = role
        self.holder = (
            next((t for t in terms if t.role is role and t.overlaps(start, end)), None)
            if role in SINGLE_HOLDER
            else None
        )

    def is_broken(self) -> bool:
        return self.holder is not None

    @property
    def message(self) -> str:
        assert self.holder is not None
        last_day = self.holder.ends_before - timedelta(days=1)
        return (
            f"the institution already has a {_ROLE_NAMES[self.role]}: officer "
            f"{self.holder.officer_id}, serving until {last_day}; dismiss them first or "
            "start the new term after that"
        )


class OfficerMustBeAppointed:
    field = "officer_id"

    def __init__(self, officer_id: UUID, term: Term | None) -> None:
        self.officer_id = officer_id
        self.term = term

    def is_broken(self) -> bool:
        return self.term is None

    @property
    def message(self) -> str:
        return f"officer {self.officer_id} was never appointed to this institution"


class MustStillServe:
    """Only an officer whose term is running (or still to come) is dismissed."""

    field = "officer_id"

    def __init__(self, term: Term, on: date) -> None:
        self.term = term
        self.on = on

    def is_broken(self) -> bool:
        return self.term.dismissed_on is not None or self.on > self.term.end

    @property
    def message(self) -> str:
        if self.term.dismissed_on is not None:
            return f"officer {self.term.officer_id} was dismissed on {self.term.dismissed_on}"
        return f"officer {self.term.officer_id}'s term ended on {self.term.end}"


class DismissalMustNotBeInFuture:
    field = "dismissed_on"

    def __init__(self, on: date, today: date) -> None:
        self.on = on
        self.today = today

    def is_broken(self) -> bool:
        return self.on > self.today

    @property
    def message(self) -> str:
        return f"a dismissal is recorded once it happened: {self.on} is in the future"
