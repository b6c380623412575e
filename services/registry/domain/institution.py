"""An AUMSos: a social-service institution of Muhammadiyah or 'Aisyiyah."""

from __future__ import annotations

from enum import StrEnum

from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.labels import Label, labels
from shared.domain.organisation import PdmMustBeInProvince, Scope
from shared.domain.rules import check_rule


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


class Institution(AggregateRoot):
    class Registered(AggregateRoot.Created):
        """An institution entered the registry, active."""

        name: str
        kind: InstitutionType
        owner: Owner
        pdm: str
        address: str | None

    @event(Registered)
    def __init__(
        self, name: str, kind: InstitutionType, owner: Owner, pdm: str, address: str | None
    ) -> None:
        self.name = name
        self.kind = kind
        self.owner = owner
        self.pdm = pdm
        self.address = address
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
    ) -> Institution:
        check_rule(PdmMustBeInProvince(pdm, tenant))
        return cls(name=name, kind=kind, owner=owner, pdm=pdm, address=address)

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
