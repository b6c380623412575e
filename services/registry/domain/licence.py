"""An institution's licences from the government: the registration letter (Tanda Daftar)
and the operating licence (Izin Operasional), each from the provincial or regency social
office, with a number, issued date and (usually) an end date; renewed, or revoked.

One record per institution and kind (`licence_id`): a renewal is the next licence of the
same kind, its events keeping every earlier one.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID, uuid5

from services.registry.domain.accreditation import REGISTRY_IDS
from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.labels import Label, labels
from shared.domain.organisation import Scope
from shared.domain.rules import check_rule


class LicenceKind(StrEnum):
    REGISTRATION = "registration"  # Tanda Daftar
    OPERATING = "operating"  # Izin Operasional


class LicenceStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


# A licence ending within this many days shows as expiring: time to apply for its renewal.
EXPIRING_WITHIN_DAYS = 90


class LicenceState(StrEnum):
    """An institution's operating licence on a given day, as the directory shows and
    filters it: the day decides between valid, expiring and expired (no event marks a
    licence's end), so it is computed when read (`projections/institutions.py`)."""

    VALID = "valid"  # in force, not ending within EXPIRING_WITHIN_DAYS (or no end date)
    EXPIRING = "expiring"  # in force, ending within EXPIRING_WITHIN_DAYS
    EXPIRED = "expired"  # its valid-until day has passed
    REVOKED = "revoked"
    MISSING = "missing"  # none recorded


LICENCE_KINDS = labels(
    "licence_kind",
    LicenceKind,
    {
        LicenceKind.REGISTRATION: Label("Tanda Daftar", "Registration letter"),
        LicenceKind.OPERATING: Label("Izin Operasional", "Operating licence"),
    },
)
LICENCE_STATUSES = labels(
    "licence_status",
    LicenceStatus,
    {
        LicenceStatus.VALID: Label("Berlaku", "Valid"),
        LicenceStatus.REVOKED: Label("Dicabut", "Revoked"),
    },
)
LICENCE_STATES = labels(
    "licence_state",
    LicenceState,
    {
        LicenceState.VALID: Label("Berlaku", "Valid"),
        LicenceState.EXPIRING: Label(
            f"Berakhir dalam {EXPIRING_WITHIN_DAYS} hari",
            f"Expiring within {EXPIRING_WITHIN_DAYS} days",
        ),
        LicenceState.EXPIRED: Label("Kedaluwarsa", "Expired"),
        LicenceState.REVOKED: Label("Dicabut", "Revoked"),
        LicenceState.MISSING: Label("Belum ada", "Missing"),
    },
)


def licence_id(institution_id: UUID, kind: LicenceKind) -> UUID:
    return uuid5(REGISTRY_IDS, f"licence:{institution_id}:{kind.value}")


class IssuedMustNotBeInFuture:
    field = "issued_on"
    message = "the issue date is in the future"

    def __init__(self, issued_on: date, today: date) -> None:
        self.issued_on = issued_on
        self.today = today

    def is_broken(self) -> bool:
        return self.issued_on > self.today


class ValidUntilMustFollowIssue:
    field = "valid_until"
    message = "valid until must be after the issue date"

    def __init__(self, issued_on: date, valid_until: date | None) -> None:
        self.issued_on = issued_on
        self.valid_until = valid_until

    def is_broken(self) -> bool:
        return self.valid_until is not None and self.valid_until <= self.issued_on


class RenewalMustFollowCurrent:
    field = "issued_on"

    def __init__(self, issued_on: date, current: date) -> None:
        self.issued_on = issued_on
        self.current = current

    def is_broken(self) -> bool:
        return self.issued_on < self.current

    @property
    def message(self) -> str:
        return f"the current licence was issued on {self.current}: a renewal comes after it"


class MustBeValid:
    field = "status"
    message = "the licence is already revoked"

    def __init__(self, status: LicenceStatus) -> None:
        self.status = status

    def is_broken(self) -> bool:
        return self.status is not LicenceStatus.VALID


def _check_dates(issued_on: date, valid_until: date | None, today: date) -> None:
    check_rule(IssuedMustNotBeInFuture(issued_on, today))
    check_rule(ValidUntilMustFollowIssue(issued_on, valid_until))


class Licence(AggregateRoot):
    class Recorded(AggregateRoot.Created):
        """The institution's first licence of this kind entered the registry."""

        institution_id: UUID
        pdm: str
        kind: LicenceKind
        number: str
        issuer: str
        issued_on: date
        valid_until: date | None

    @staticmethod
    def create_id(institution_id: UUID, kind: LicenceKind) -> UUID:
        return licence_id(institution_id, kind)

    @event(Recorded)
    def __init__(
        self,
        institution_id: UUID,
        pdm: str,
        kind: LicenceKind,
        number: str,
        issuer: str,
        issued_on: date,
        valid_until: date | None,
    ) -> None:
        self.institution_id = institution_id
        self.pdm = pdm
        self.kind = kind
        self.number = number
        self.issuer = issuer
        self.issued_on = issued_on
        self.valid_until = valid_until
        self.status = LicenceStatus.VALID

    @classmethod
    def record(
        cls,
        *,
        institution_id: UUID,
        pdm: str,
        kind: LicenceKind,
        number: str,
        issuer: str,
        issued_on: date,
        valid_until: date | None,
        today: date,
    ) -> Licence:
        _check_dates(issued_on, valid_until, today)
        return cls(
            institution_id=institution_id,
            pdm=pdm,
            kind=kind,
            number=number,
            issuer=issuer,
            issued_on=issued_on,
            valid_until=valid_until,
        )

    @property
    def scope(self) -> Scope:
        return Scope(pdm=self.pdm, institution=self.institution_id)

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Recorded: applied by `__init__`."""

    class Renewed(AggregateRoot.Event):
        """The next licence of this kind (also after a revocation: a new licence)."""

        number: str
        issuer: str
        issued_on: date
        valid_until: date | None

    def renew(
        self, *, number: str, issuer: str, issued_on: date, valid_until: date | None, today: date
    ) -> None:
        _check_dates(issued_on, valid_until, today)
        check_rule(RenewalMustFollowCurrent(issued_on, self.issued_on))
        self.trigger_event(
            self.Renewed,
            number=number,
            issuer=issuer,
            issued_on=issued_on,
            valid_until=valid_until,
        )

    @apply.register
    def _(self, event: Licence.Renewed) -> None:
        self.number = event.number
        self.issuer = event.issuer
        self.issued_on = event.issued_on
        self.valid_until = event.valid_until
        self.status = LicenceStatus.VALID

    class Revoked(AggregateRoot.Event):
        """The issuer withdrew the licence (the reason is in the metadata)."""

    def revoke(self) -> None:
        check_rule(MustBeValid(self.status))
        self.trigger_event(self.Revoked)

    @apply.register
    def _(self, event: Licence.Revoked) -> None:
        self.status = LicenceStatus.REVOKED


class LicenceAlreadyRecorded:
    field = "kind"

    def __init__(self, kind: LicenceKind, recorded: bool) -> None:
        self.kind = kind
        self.recorded = recorded

    def is_broken(self) -> bool:
        return self.recorded

    @property
    def message(self) -> str:
        return f"the institution's {self.kind} licence is already recorded: renew it"
