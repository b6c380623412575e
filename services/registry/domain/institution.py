"""An AUMSos: a social-service institution of Muhammadiyah or 'Aisyiyah."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec

from services.registry.domain.officers import (
    DismissalMustNotBeInFuture,
    MustStillServe,
    OfficerMustBeAppointed,
    OfficerRole,
    OneHolderAtATime,
    Term,
    TermMustEndAfterStart,
    term_of,
)
from services.registry.domain.organisation_unit import UnitKind, regency_of
from services.registry.domain.profile import (
    Address,
    Beneficiaries,
    BeneficiaryReport,
    Contact,
    PeriodMustHaveBegun,
    RegencyMustBeInProvince,
    ServiceKind,
    ServicesMustBeDistinct,
)
from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.labels import Label, labels
from shared.domain.organisation import PdmMustBeInProvince, Scope
from shared.domain.rules import check_rule
from shared.personal.fields import Personal


class InstitutionType(StrEnum):
    PSKM = "pskm"  # family support centre
    PAKM = "pakm"  # family care centre
    LKSA = "lksa"  # children's home (Muhammadiyah Children Center)
    SENIOR_CARE = "senior_care"
    DISABILITY_CENTER = "disability_center"
    RUMAH_SINGGAH = "rumah_singgah"  # shelter
    RUMAH_SAKINAH = "rumah_sakinah"  # family counselling / shelter
    BAKESOS = "bakesos"  # Balai Kesejahteraan Sosial


class Owner(StrEnum):
    MUHAMMADIYAH = "muhammadiyah"
    AISYIYAH = "aisyiyah"

    @property
    def regency_unit(self) -> UnitKind:
        """The kind of council an institution of this owner sits in (its `pdm` code)."""
        return UnitKind.PDA if self is Owner.AISYIYAH else UnitKind.PDM

    @property
    def branch_unit(self) -> UnitKind:
        """The kind of branch an institution of this owner may sit under (its `unit`)."""
        return UnitKind.PCA if self is Owner.AISYIYAH else UnitKind.PCM

    @classmethod
    def of_unit(cls, kind: UnitKind) -> Owner:
        """Whose institutions a council of `kind` has: 'Aisyiyah's for a PDA or PCA."""
        return cls.AISYIYAH if kind in {UnitKind.PDA, UnitKind.PCA} else cls.MUHAMMADIYAH


class InstitutionStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


# What people call them (seed 000: the AUMSos the MPKS rule 268/1.7/A/2023 names).
INSTITUTION_TYPES = labels(
    "institution_type",
    InstitutionType,
    {
        InstitutionType.PSKM: Label(
            "Pusat Santunan Keluarga Muhammadiyah (PSKM)",
            "Muhammadiyah Family Support Centre (PSKM)",
        ),
        InstitutionType.PAKM: Label(
            "Pusat Asuhan Keluarga Muhammadiyah (PAKM)",
            "Muhammadiyah Family Care Centre (PAKM)",
        ),
        InstitutionType.LKSA: Label(
            "Lembaga Kesejahteraan Sosial Anak (LKSA) / Muhammadiyah Children Center",
            "Children's home (LKSA) / Muhammadiyah Children Center",
        ),
        InstitutionType.SENIOR_CARE: Label(
            "Muhammadiyah Senior Care (LKS Lanjut Usia)",
            "Muhammadiyah Senior Care (elderly care home)",
        ),
        InstitutionType.DISABILITY_CENTER: Label(
            "Muhammadiyah Disability Center", "Muhammadiyah Disability Center"
        ),
        InstitutionType.RUMAH_SINGGAH: Label("Rumah Singgah", "Shelter (Rumah Singgah)"),
        InstitutionType.RUMAH_SAKINAH: Label(
            "Rumah Sakinah", "Family counselling and shelter (Rumah Sakinah)"
        ),
        InstitutionType.BAKESOS: Label(
            "Balai Kesejahteraan Sosial (Bakesos)", "Social welfare hall (Bakesos)"
        ),
    },
)
OWNERS = labels(
    "owner",
    Owner,
    {
        Owner.MUHAMMADIYAH: Label("Muhammadiyah", "Muhammadiyah"),
        Owner.AISYIYAH: Label("'Aisyiyah", "'Aisyiyah"),
    },
)
INSTITUTION_STATUSES = labels(
    "institution_status",
    InstitutionStatus,
    {
        InstitutionStatus.ACTIVE: Label("Aktif", "Active"),
        InstitutionStatus.SUSPENDED: Label("Dibekukan", "Suspended"),
        InstitutionStatus.CLOSED: Label("Ditutup", "Closed"),
    },
)


class MustBeOpen:
    """A closed institution stays as it was closed: its record is kept for reading only."""

    field = "status"
    message = "the institution is closed: it can no longer change"

    def __init__(self, status: InstitutionStatus) -> None:
        self.status = status

    def is_broken(self) -> bool:
        return self.status is InstitutionStatus.CLOSED


class MustHaveStatus:
    """A change of status starts from the one status it makes sense from."""

    field = "status"

    def __init__(
        self, status: InstitutionStatus, required: InstitutionStatus, message: str
    ) -> None:
        self.status = status
        self.required = required
        self.message = message

    def is_broken(self) -> bool:
        return self.status is not self.required


class UnitMustBeInPdm:
    """An institution's branch (PCM or PCA code) lies inside its PDM's regency/city."""

    field = "unit"

    def __init__(self, unit: str | None, pdm: str) -> None:
        self.unit = unit
        self.pdm = pdm

    def is_broken(self) -> bool:
        return self.unit is not None and regency_of(self.unit) != self.pdm

    @property
    def message(self) -> str:
        return f"branch {self.unit} is not a branch of PDM {self.pdm}"


class Institution(AggregateRoot):
    class Registered(AggregateRoot.Created):
        """An institution entered the registry, active.

        Version 2 added `unit`: the branch (PCM code, or PCA for 'Aisyiyah) it sits
        under, None when directly under its PDM. Version 1 institutions were all directly
        under their PDM."""

        name: str
        kind: InstitutionType
        owner: Owner
        pdm: str
        address: str | None
        unit: str | None
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["unit"] = None

    @event(Registered)
    def __init__(
        self,
        name: str,
        kind: InstitutionType,
        owner: Owner,
        pdm: str,
        address: str | None,
        unit: str | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.owner = owner
        self.pdm = pdm
        self.address = address
        self.unit = unit
        self.status = InstitutionStatus.ACTIVE

    @classmethod
    def register(
        cls,
        *,
        tenant: str,
        name: str,
        kind: InstitutionType,
        owner: Owner,
        pdm: str,
        address: str | None = None,
        unit: str | None = None,
    ) -> Institution:
        """Whether the PDM and the branch are open is the caller's to check (they are
        other records); this checks where they lie."""
        check_rule(PdmMustBeInProvince(pdm, tenant))
        check_rule(UnitMustBeInPdm(unit, pdm))
        return cls(name=name, kind=kind, owner=owner, pdm=pdm, address=address, unit=unit)

    @property
    def scope(self) -> Scope:
        return Scope(pdm=self.pdm, institution=self.id)

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Registered: applied by `__init__`."""

    class Renamed(AggregateRoot.Event):
        """The institution's name changed."""

        name: str

    def rename(self, name: str) -> None:
        check_rule(MustBeOpen(self.status))
        if name != self.name:
            self.trigger_event(self.Renamed, name=name)

    @apply.register
    def _(self, event: Institution.Renamed) -> None:
        self.name = event.name

    class MovedToUnit(AggregateRoot.Event):
        """The institution now sits under another branch of its PDM (`unit`), or directly
        under the PDM (None); the reason is in the metadata."""

        unit: str | None

    def move_to_unit(self, unit: str | None) -> None:
        check_rule(MustBeOpen(self.status))
        check_rule(UnitMustBeInPdm(unit, self.pdm))
        if unit != self.unit:
            self.trigger_event(self.MovedToUnit, unit=unit)

    @apply.register
    def _(self, event: Institution.MovedToUnit) -> None:
        self.unit = event.unit

    class Suspended(AggregateRoot.Event):
        """The institution may not serve until reinstated (the reason is in the metadata)."""

    def suspend(self) -> None:
        check_rule(MustBeOpen(self.status))
        check_rule(
            MustHaveStatus(
                self.status, InstitutionStatus.ACTIVE, "the institution is already suspended"
            )
        )
        self.trigger_event(self.Suspended)

    @apply.register
    def _(self, event: Institution.Suspended) -> None:
        self.status = InstitutionStatus.SUSPENDED

    class Reinstated(AggregateRoot.Event):
        """A suspended institution is active again."""

    def reinstate(self) -> None:
        check_rule(MustBeOpen(self.status))
        check_rule(
            MustHaveStatus(
                self.status, InstitutionStatus.SUSPENDED, "the institution is not suspended"
            )
        )
        self.trigger_event(self.Reinstated)

    @apply.register
    def _(self, event: Institution.Reinstated) -> None:
        self.status = InstitutionStatus.ACTIVE

    class Closed(AggregateRoot.Event):
        """The institution closed for good (the reason is in the metadata); its record
        stays, for reading only."""

    def close(self) -> None:
        """Only an active institution closes: a suspended one is reinstated first."""
        check_rule(MustBeOpen(self.status))
        check_rule(
            MustHaveStatus(
                self.status,
                InstitutionStatus.ACTIVE,
                "the institution is suspended: reinstate it first",
            )
        )
        self.trigger_event(self.Closed)

    @apply.register
    def _(self, event: Institution.Closed) -> None:
        self.status = InstitutionStatus.CLOSED

    # The profile and the officers. Their state starts empty on the class (a record
    # registered before them has none), so registering stays as it was.
    regency: str | None = None
    capacity: int | None = None
    services: tuple[ServiceKind, ...] = ()
    phone: str | None = None
    email: str | None = None
    beneficiaries: tuple[BeneficiaryReport, ...] = ()
    officers: tuple[Term, ...] = ()

    # One event per kind of profile change, each with its meaning (moved, capacity
    # changed...), so a reader follows the one it needs and no field is "absent meaning
    # unchanged"; one update records only the kinds that changed, together.

    class AddressChanged(AggregateRoot.Event):
        """The institution moved, or its address was corrected."""

        address: str
        regency: str

    class CapacityChanged(AggregateRoot.Event):
        """How many residents or clients the institution can serve at once."""

        capacity: int

    class ServicesChanged(AggregateRoot.Event):
        """The services the institution offers, the whole list."""

        services: tuple[ServiceKind, ...]

    class ContactChanged(AggregateRoot.Event):
        """The institution's public phone and e-mail, both (null: none)."""

        phone: str | None
        email: str | None

    class BeneficiariesReported(AggregateRoot.Event):
        """How many the institution served in a period (a new count for a period replaces
        the earlier one)."""

        period: str
        children: int
        elderly: int
        persons_with_disabilities: int
        families: int
        others: int

        @property
        def report(self) -> BeneficiaryReport:
            counts = Beneficiaries(
                children=self.children,
                elderly=self.elderly,
                persons_with_disabilities=self.persons_with_disabilities,
                families=self.families,
                others=self.others,
            )
            return BeneficiaryReport(period=self.period, counts=counts)

    def update_profile(
        self,
        *,
        tenant: str,
        today: date,
        address: Address | None = None,
        capacity: int | None = None,
        services: tuple[ServiceKind, ...] | None = None,
        contact: Contact | None = None,
        beneficiaries: BeneficiaryReport | None = None,
    ) -> None:
        """Each part given replaces what the profile had; parts not given stay. Every rule
        holds before anything is recorded, and a part given as it already was records
        nothing."""
        check_rule(MustBeOpen(self.status))
        if address is not None:
            check_rule(RegencyMustBeInProvince(address.regency, tenant))
        if services is not None:
            check_rule(ServicesMustBeDistinct(services))
        if beneficiaries is not None:
            check_rule(PeriodMustHaveBegun(beneficiaries.period, today))
        if address is not None and (address.line, address.regency) != (
            self.address,
            self.regency,
        ):
            self.trigger_event(self.AddressChanged, address=address.line, regency=address.regency)
        if capacity is not None and capacity != self.capacity:
            self.trigger_event(self.CapacityChanged, capacity=capacity)
        if services is not None and set(services) != set(self.services):
            self.trigger_event(self.ServicesChanged, services=services)
        if contact is not None and (contact.phone, contact.email) != (self.phone, self.email):
            self.trigger_event(self.ContactChanged, phone=contact.phone, email=contact.email)
        if beneficiaries is not None and beneficiaries not in self.beneficiaries:
            self.trigger_event(
                self.BeneficiariesReported,
                period=beneficiaries.period,
                **msgspec.structs.asdict(beneficiaries.counts),
            )

    @apply.register
    def _(self, event: Institution.AddressChanged) -> None:
        self.address = event.address
        self.regency = event.regency

    @apply.register
    def _(self, event: Institution.CapacityChanged) -> None:
        self.capacity = event.capacity

    @apply.register
    def _(self, event: Institution.ServicesChanged) -> None:
        self.services = tuple(event.services)

    @apply.register
    def _(self, event: Institution.ContactChanged) -> None:
        self.phone = event.phone
        self.email = event.email

    @apply.register
    def _(self, event: Institution.BeneficiariesReported) -> None:
        period = event.report.period
        self.beneficiaries = (
            *(r for r in self.beneficiaries if r.period != period),
            event.report,
        )

    class OfficerAppointed(AggregateRoot.Event):
        """Someone was appointed to a post of the institution for a term (the decision is
        the reason, in the metadata). `officer_id` is the appointee as a data subject: their
        name, NIK and phone are stored sealed under that subject's key, erasable."""

        officer_id: UUID
        role: OfficerRole
        full_name: Annotated[str, Personal(subject="officer_id")]
        nik: Annotated[str, Personal(subject="officer_id")]
        phone: Annotated[str | None, Personal(subject="officer_id")]
        term_start: date
        term_end: date

    def appoint_officer(
        self,
        *,
        role: OfficerRole,
        full_name: str,
        nik: str,
        phone: str | None,
        term_start: date,
        term_end: date,
    ) -> UUID:
        """The new officer's id (a data subject of its own)."""
        check_rule(MustBeOpen(self.status))
        check_rule(TermMustEndAfterStart(term_start, term_end))
        check_rule(OneHolderAtATime(role, term_start, term_end, self.officers))
        officer_id = uuid4()
        self.trigger_event(
            self.OfficerAppointed,
            officer_id=officer_id,
            role=role,
            full_name=full_name,
            nik=nik,
            phone=phone,
            term_start=term_start,
            term_end=term_end,
        )
        return officer_id

    @apply.register
    def _(self, event: Institution.OfficerAppointed) -> None:
        # Only what the rules need: the personal values stay in the (sealed) event.
        term = Term(
            officer_id=event.officer_id,
            role=event.role,
            start=event.term_start,
            end=event.term_end,
        )
        self.officers = (*self.officers, term)

    class OfficerDismissed(AggregateRoot.Event):
        """An officer no longer serves from `dismissed_on` (the reason is in the metadata)."""

        officer_id: UUID
        dismissed_on: date

    def dismiss_officer(self, officer_id: UUID, *, on: date, today: date) -> None:
        check_rule(MustBeOpen(self.status))
        term = term_of(self.officers, officer_id)
        check_rule(OfficerMustBeAppointed(officer_id, term))
        assert term is not None
        check_rule(MustStillServe(term, on))
        check_rule(DismissalMustNotBeInFuture(on, today))
        self.trigger_event(self.OfficerDismissed, officer_id=officer_id, dismissed_on=on)

    @apply.register
    def _(self, event: Institution.OfficerDismissed) -> None:
        self.officers = tuple(
            msgspec.structs.replace(t, dismissed_on=event.dismissed_on)
            if t.officer_id == event.officer_id
            else t
            for t in self.officers
        )
