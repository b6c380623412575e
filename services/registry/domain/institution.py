"""An AUMSos: a social-service institution of Muhammadiyah or 'Aisyiyah."""

from __future__ import annotations

from enum import StrEnum

from shared.domain.aggregate import AggregateRoot, event
from shared.domain.errors import RuleBroken
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


class Institution(AggregateRoot):
    @event("Registered")
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

    def rename(self, name: str) -> None:
        if name != self.name:
            self._renamed(name=name)

    @event("Renamed")
    def _renamed(self, name: str) -> None:
        self.name = name

    def suspend(self) -> None:
        if self.status is InstitutionStatus.SUSPENDED:
            raise RuleBroken("the institution is already suspended", field="status")
        self._suspended()

    @event("Suspended")
    def _suspended(self) -> None:
        self.status = InstitutionStatus.SUSPENDED

    def reinstate(self) -> None:
        if self.status is InstitutionStatus.ACTIVE:
            raise RuleBroken("the institution is not suspended", field="status")
        self._reinstated()

    @event("Reinstated")
    def _reinstated(self) -> None:
        self.status = InstitutionStatus.ACTIVE
