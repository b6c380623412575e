"""The accreditation of an institution by the national accreditation board (BAN-PS): its
decisions, one at a time current, each replacing the one before (the events keep them all).

A decision grades the institution A, B or C — accredited until a date — or finds it not
accredited. Each of the five assessed components (Permensos 8/2025) is scored 0 to 100: the
board publishes no bands per grade, so the scores are recorded as given, not checked against
the grade. An accreditation ends when its date passes (the scheduler records the expiry:
`projections/accreditation.py`), when the board revokes it, or when a newer decision
replaces it.

One record per institution (`accreditation_id`), and one per certificate number
(`CertificateNumber`, id `certificate_claim_id`): recording a certificate creates its claim
in the same commit, so two decisions naming the same number cannot both be saved.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated
from uuid import UUID, uuid4, uuid5

import msgspec

from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.labels import Label, labels
from shared.domain.organisation import Scope
from shared.domain.rules import check_rule

# Namespace of the registry's derived record ids (stable: changing it orphans records).
REGISTRY_IDS = UUID("6f1c3a52-8d0e-4b7a-9a51-2f8e3c1d7b40")

SCORE_MIN = 0
SCORE_MAX = 100
Score = Annotated[int, msgspec.Meta(ge=SCORE_MIN, le=SCORE_MAX)]


def accreditation_id(institution_id: UUID) -> UUID:
    """The one accreditation record of an institution."""
    return uuid5(REGISTRY_IDS, f"accreditation:{institution_id}")


def normalised_certificate(number: str) -> str:
    """How two spellings of one certificate number compare: case and spacing aside."""
    return " ".join(number.split()).casefold()


def certificate_claim_id(tenant: str, number: str) -> UUID:
    """The claim of a certificate number in a tenant."""
    return uuid5(REGISTRY_IDS, f"certificate:{tenant}:{normalised_certificate(number)}")


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    NOT_ACCREDITED = "not_accredited"


class AccreditationStatus(StrEnum):
    ACCREDITED = "accredited"
    NOT_ACCREDITED = "not_accredited"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Standing(StrEnum):
    """An institution's accreditation in one word, as the directory shows and filters it
    and the counts per grade count it: the grade in force, or why there is none."""

    A = "A"
    B = "B"
    C = "C"
    NOT_ACCREDITED = "not_accredited"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NEVER_ASSESSED = "never_assessed"

    @property
    def in_force(self) -> bool:
        """A grade the institution holds now (the others say why it holds none)."""
        return self in (Standing.A, Standing.B, Standing.C)


GRADES = labels(
    "accreditation_grade",
    Grade,
    {
        Grade.A: Label("A (Unggul)", "A (Excellent)"),
        Grade.B: Label("B (Baik)", "B (Good)"),
        Grade.C: Label("C (Cukup)", "C (Fair)"),
        Grade.NOT_ACCREDITED: Label("Tidak terakreditasi", "Not accredited"),
    },
)
ACCREDITATION_STATUSES = labels(
    "accreditation_status",
    AccreditationStatus,
    {
        AccreditationStatus.ACCREDITED: Label("Terakreditasi", "Accredited"),
        AccreditationStatus.NOT_ACCREDITED: Label("Tidak terakreditasi", "Not accredited"),
        AccreditationStatus.EXPIRED: Label("Kedaluwarsa", "Expired"),
        AccreditationStatus.REVOKED: Label("Dicabut", "Revoked"),
    },
)
STANDINGS = labels(
    "accreditation_standing",
    Standing,
    {
        Standing.A: Label("Terakreditasi A", "Accredited A"),
        Standing.B: Label("Terakreditasi B", "Accredited B"),
        Standing.C: Label("Terakreditasi C", "Accredited C"),
        Standing.NOT_ACCREDITED: Label("Tidak terakreditasi", "Not accredited"),
        Standing.EXPIRED: Label("Akreditasi kedaluwarsa", "Accreditation expired"),
        Standing.REVOKED: Label("Akreditasi dicabut", "Accreditation revoked"),
        Standing.NEVER_ASSESSED: Label("Belum pernah diakreditasi", "Never assessed"),
    },
)


class Scores(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The five assessed components, each 0 to 100."""

    programme: Score
    human_resources: Score
    management: Score  # management & organisation
    facilities: Score
    service_results: Score


class AccreditationValidity(msgspec.Struct, frozen=True):
    """How long an accreditation lasts by default, per grade, in years (configuration:
    `services/registry/configuration.py`); a decision may give its own date."""

    years: dict[Grade, int]

    def until(self, grade: Grade, decided_on: date) -> date:
        years = self.years[grade]
        try:
            return decided_on.replace(year=decided_on.year + years)
        except ValueError:  # 29 February into a year without one
            return decided_on.replace(year=decided_on.year + years, day=28)


DEFAULT_VALIDITY = AccreditationValidity({Grade.A: 5, Grade.B: 3, Grade.C: 2})


class ScoresMustBeInRange:
    field = "scores"

    def __init__(self, scores: Scores) -> None:
        self.out = [
            name
            for name in Scores.__struct_fields__
            if not SCORE_MIN <= getattr(scores, name) <= SCORE_MAX
        ]

    def is_broken(self) -> bool:
        return bool(self.out)

    @property
    def message(self) -> str:
        return f"scores are {SCORE_MIN} to {SCORE_MAX}: {', '.join(self.out)} outside"


class DecisionMustNotBeInFuture:
    field = "decided_on"
    message = "the decision date is in the future"

    def __init__(self, decided_on: date, today: date) -> None:
        self.decided_on = decided_on
        self.today = today

    def is_broken(self) -> bool:
        return self.decided_on > self.today


class ValidUntilMustFollowDecision:
    field = "valid_until"
    message = "valid until must be after the decision date"

    def __init__(self, decided_on: date, valid_until: date | None) -> None:
        self.decided_on = decided_on
        self.valid_until = valid_until

    def is_broken(self) -> bool:
        return self.valid_until is not None and self.valid_until <= self.decided_on


class GrantNeedsCertificate:
    """A grade comes with the board's certificate; a refusal has none."""

    field = "certificate_number"

    def __init__(self, grade: Grade, certificate_number: str | None) -> None:
        self.grade = grade
        self.certificate_number = certificate_number

    def is_broken(self) -> bool:
        granted = self.grade is not Grade.NOT_ACCREDITED
        return granted != (self.certificate_number is not None)

    @property
    def message(self) -> str:
        if self.grade is Grade.NOT_ACCREDITED:
            return "a not-accredited decision has no certificate number"
        return "a grade needs the certificate number"


class RefusalHasNoValidity:
    field = "valid_until"
    message = "a not-accredited decision has no validity"

    def __init__(self, grade: Grade, valid_until: date | None) -> None:
        self.grade = grade
        self.valid_until = valid_until

    def is_broken(self) -> bool:
        return self.grade is Grade.NOT_ACCREDITED and self.valid_until is not None


class MustNotPredateCurrentDecision:
    """A decision replaces the current one: an older decision cannot."""

    field = "decided_on"

    def __init__(self, decided_on: date, current: date | None) -> None:
        self.decided_on = decided_on
        self.current = current

    def is_broken(self) -> bool:
        return self.current is not None and self.decided_on < self.current

    @property
    def message(self) -> str:
        return f"the current decision is of {self.current}: a decision before it replaces nothing"


NO_ACCREDITATION_IN_FORCE = "the institution holds no accreditation in force"


class MustBeAccredited:
    """Only an accreditation in force is revoked: one whose date has passed ended then,
    even before the scheduler records its expiry (at midnight after the date, polled)."""

    field = "status"

    def __init__(
        self, status: AccreditationStatus | None, valid_until: date | None, today: date
    ) -> None:
        self.status = status
        self.valid_until = valid_until
        self.today = today

    @property
    def _lapsed(self) -> bool:
        return self.valid_until is not None and self.valid_until < self.today

    def is_broken(self) -> bool:
        return self.status is not AccreditationStatus.ACCREDITED or self._lapsed

    @property
    def message(self) -> str:
        if self.status is AccreditationStatus.ACCREDITED and self._lapsed:
            return f"the accreditation ended on {self.valid_until}: there is none in force"
        return NO_ACCREDITATION_IN_FORCE


class Accreditation(AggregateRoot):
    class Opened(AggregateRoot.Created):
        """The institution's accreditation record, opened by its first decision."""

        institution_id: UUID
        pdm: str

    @staticmethod
    def create_id(institution_id: UUID) -> UUID:
        return accreditation_id(institution_id)

    @event(Opened)
    def __init__(self, institution_id: UUID, pdm: str) -> None:
        self.institution_id = institution_id
        self.pdm = pdm
        self.status: AccreditationStatus | None = None
        self.grade: Grade | None = None
        self.decision_id: UUID | None = None
        self.decided_on: date | None = None
        self.valid_until: date | None = None

    @classmethod
    def open(cls, institution_id: UUID, pdm: str) -> Accreditation:
        return cls(institution_id=institution_id, pdm=pdm)

    @property
    def scope(self) -> Scope:
        return Scope(pdm=self.pdm, institution=self.institution_id)

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Opened: applied by `__init__`."""

    class Granted(AggregateRoot.Event):
        """The board accredited the institution with a grade, until a date (published:
        `Accreditation.Granted` v1)."""

        decision_id: UUID
        institution_id: UUID
        grade: Grade
        scores: Scores
        decided_on: date
        certificate_number: str
        regulation: str
        valid_until: date

    class Refused(AggregateRoot.Event):
        """The board found the institution not accredited; any accreditation it held
        ends."""

        decision_id: UUID
        institution_id: UUID
        scores: Scores
        decided_on: date
        regulation: str

    def decide(
        self,
        *,
        grade: Grade,
        scores: Scores,
        decided_on: date,
        certificate_number: str | None,
        regulation: str,
        valid_until: date | None,
        today: date,
        validity: AccreditationValidity,
    ) -> None:
        """Record a decision of the board: it replaces the current one."""
        check_rule(ScoresMustBeInRange(scores))
        check_rule(DecisionMustNotBeInFuture(decided_on, today))
        check_rule(MustNotPredateCurrentDecision(decided_on, self.decided_on))
        check_rule(GrantNeedsCertificate(grade, certificate_number))
        check_rule(RefusalHasNoValidity(grade, valid_until))
        check_rule(ValidUntilMustFollowDecision(decided_on, valid_until))
        if grade is Grade.NOT_ACCREDITED:
            self.trigger_event(
                self.Refused,
                decision_id=uuid4(),
                institution_id=self.institution_id,
                scores=scores,
                decided_on=decided_on,
                regulation=regulation,
            )
            return
        assert certificate_number is not None  # GrantNeedsCertificate
        self.trigger_event(
            self.Granted,
            decision_id=uuid4(),
            institution_id=self.institution_id,
            grade=grade,
            scores=scores,
            decided_on=decided_on,
            certificate_number=certificate_number,
            regulation=regulation,
            valid_until=valid_until or validity.until(grade, decided_on),
        )

    @apply.register
    def _(self, event: Accreditation.Granted) -> None:
        self.status = AccreditationStatus.ACCREDITED
        self.grade = event.grade
        self.decision_id = event.decision_id
        self.decided_on = event.decided_on
        self.valid_until = event.valid_until

    @apply.register
    def _(self, event: Accreditation.Refused) -> None:
        self.status = AccreditationStatus.NOT_ACCREDITED
        self.grade = Grade.NOT_ACCREDITED
        self.decision_id = event.decision_id
        self.decided_on = event.decided_on
        self.valid_until = None

    class Revoked(AggregateRoot.Event):
        """The board withdrew the accreditation in force (the reason is in the metadata;
        published: `Accreditation.Revoked` v1)."""

        decision_id: UUID
        institution_id: UUID

    def revoke(self, today: date) -> None:
        check_rule(MustBeAccredited(self.status, self.valid_until, today))
        assert self.decision_id is not None  # accredited: a decision was granted
        self.trigger_event(
            self.Revoked, decision_id=self.decision_id, institution_id=self.institution_id
        )

    @apply.register
    def _(self, event: Accreditation.Revoked) -> None:
        self.status = AccreditationStatus.REVOKED

    class Expired(AggregateRoot.Event):
        """The accreditation's date passed (published: `Accreditation.Expired` v1)."""

        decision_id: UUID
        institution_id: UUID
        valid_until: date

    def expire(self, decision_id: UUID) -> None:
        """The decision `decision_id` ends because its date passed (the scheduler says
        when: `projections/accreditation.py`) — only if it is still the one in force: a
        decision replaced, revoked or already expired expires no more, whenever asked."""
        if self.status is AccreditationStatus.ACCREDITED and self.decision_id == decision_id:
            assert self.valid_until is not None  # granted: a date was set
            self.trigger_event(
                self.Expired,
                decision_id=decision_id,
                institution_id=self.institution_id,
                valid_until=self.valid_until,
            )

    @apply.register
    def _(self, event: Accreditation.Expired) -> None:
        self.status = AccreditationStatus.EXPIRED


class CertificateNumber(AggregateRoot):
    """A certificate number, claimed by the decision that recorded it: unique in the tenant
    (the claim's id is derived from the number, so a second claim is a conflicting save)."""

    class Claimed(AggregateRoot.Created):
        number: str
        institution_id: UUID
        pdm: str

    @event(Claimed)
    def __init__(self, *, id: UUID, number: str, institution_id: UUID, pdm: str) -> None:
        self.number = number
        self.institution_id = institution_id
        self.pdm = pdm

    @classmethod
    def claim(cls, tenant: str, number: str, institution_id: UUID, pdm: str) -> CertificateNumber:
        return cls(
            id=certificate_claim_id(tenant, number),
            number=number,
            institution_id=institution_id,
            pdm=pdm,
        )

    @property
    def scope(self) -> Scope:
        return Scope(pdm=self.pdm, institution=self.institution_id)


class CertificateNumberMustBeUnused:
    field = "certificate_number"

    def __init__(self, number: str, taken: bool) -> None:
        self.number = number
        self.taken = taken

    def is_broken(self) -> bool:
        return self.taken

    @property
    def message(self) -> str:
        return f"certificate number {self.number!r} is already recorded in this province"
