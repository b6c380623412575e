"""An AUMSos: a social-service institution of Muhammadiyah or 'Aisyiyah."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from services.registry.domain.organisation_unit import UnitKind, regency_of
from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
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

    @property
    def regency_unit(self) -> UnitKind:
        """The kind of council an institution of this owner sits in (its `pdm` code)."""
        return UnitKind.PDA if self is Owner.AISYIYAH else UnitKind.PDM

    @property
    def branch_unit(self) -> UnitKind:
        """The kind of branch an institution of this owner may sit under (its `unit`)."""
        return UnitKind.PCA if self is Owner.AISYIYAH else UnitKind.PCM


class InstitutionStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


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
