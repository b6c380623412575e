"""An institution's profile: where it is, how many it can take in, what it offers, whom it
served, and how to reach it. Value objects and the rules a profile change must keep."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import msgspec

from shared.domain.labels import Label, labels
from shared.domain.organisation import PdmMustBeInProvince


class ServiceKind(StrEnum):
    """What an AUMSos offers, as MPKS reports it (seeds 000 and 003): the closed list a
    directory and the performance index can count by."""

    RESIDENTIAL_CARE = "residential_care"  # pengasuhan dalam panti (LKSA, senior care)
    FAMILY_BASED_CARE = "family_based_care"  # santunan / asuhan keluarga (PSKM, PAKM)
    DAY_CARE = "day_care"
    FAMILY_SUPPORT = "family_support"
    COUNSELLING = "counselling"  # konseling anak dan keluarga
    REHABILITATION = "rehabilitation"
    EDUCATION = "education"
    HEALTH = "health"
    SHELTER = "shelter"  # rumah singgah, rumah sakinah
    OUTREACH = "outreach"  # penjangkauan (Bakesos)
    ECONOMIC_EMPOWERMENT = "economic_empowerment"  # pemberdayaan ekonomi keluarga


SERVICE_KINDS = labels(
    "service_kind",
    ServiceKind,
    {
        ServiceKind.RESIDENTIAL_CARE: Label("Pengasuhan dalam panti", "Residential care"),
        ServiceKind.FAMILY_BASED_CARE: Label("Pengasuhan berbasis keluarga", "Family-based care"),
        ServiceKind.DAY_CARE: Label("Penitipan harian", "Day care"),
        ServiceKind.FAMILY_SUPPORT: Label("Pendampingan keluarga", "Family support"),
        ServiceKind.COUNSELLING: Label("Konseling anak dan keluarga", "Counselling"),
        ServiceKind.REHABILITATION: Label("Rehabilitasi sosial", "Rehabilitation"),
        ServiceKind.EDUCATION: Label("Pendidikan", "Education"),
        ServiceKind.HEALTH: Label("Kesehatan", "Health"),
        ServiceKind.SHELTER: Label("Rumah singgah dan perlindungan", "Shelter"),
        ServiceKind.OUTREACH: Label("Penjangkauan", "Outreach"),
        ServiceKind.ECONOMIC_EMPOWERMENT: Label(
            "Pemberdayaan ekonomi keluarga", "Economic empowerment"
        ),
    },
)


# Limits the API documents (checked when a command is decoded): beyond them is a typing
# error, not an institution.
MAX_PEOPLE = 1_000_000
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_PEOPLE)]
RegencyCode = Annotated[
    str, msgspec.Meta(pattern=r"^\d{4}$", description="4-digit regency/city code (Kemendagri)")
]
Period = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(19|20)\d{2}(-(0[1-9]|1[0-2]))?$",
        description="a year (2025) or a month (2025-07)",
    ),
]
Phone = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\+?[0-9][0-9 ()-]{5,22}[0-9]$",
        description="digits, spaces, dashes or brackets, optionally after +",
    ),
]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")]


class Address(msgspec.Struct, frozen=True, kw_only=True):
    """Where the institution is: the street address and its regency or city."""

    line: Annotated[str, msgspec.Meta(min_length=3, max_length=500, pattern=r"\S")]
    regency: RegencyCode


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """How the public reaches the institution (the office, not a person): replaced whole,
    so a number given up is sent as null."""

    phone: Phone | None = None
    email: Email | None = None


class Beneficiaries(msgspec.Struct, frozen=True, kw_only=True):
    """How many people an institution served in a period, by group."""

    children: Count = 0
    elderly: Count = 0
    persons_with_disabilities: Count = 0
    families: Count = 0
    others: Count = 0


class BeneficiaryReport(msgspec.Struct, frozen=True, kw_only=True):
    """The beneficiaries of one period: a year (`2025`) or a month (`2025-07`)."""

    period: Period
    counts: Beneficiaries


class RegencyMustBeInProvince(PdmMustBeInProvince):
    """An address lies in a regency (kabupaten, 01-69) or a city (kota, 71-99) of the
    institution's own province: 4 digits, the first two the province's."""

    field = "address.regency"

    def __init__(self, regency: str, tenant: str) -> None:
        super().__init__(regency, tenant)

    def is_broken(self) -> bool:
        return super().is_broken() or self.pdm[2:] in {"00", "70"}

    @property
    def message(self) -> str:
        return f"regency/city {self.pdm!r} is not a regency or city of province {self.tenant}"


class PeriodMustHaveBegun:
    """Beneficiaries are counted for a period that has begun: a future one has none yet."""

    field = "beneficiaries.period"

    def __init__(self, period: str, today: date) -> None:
        self.period = period
        self.today = today

    def is_broken(self) -> bool:
        year, _, month = self.period.partition("-")
        return (int(year), int(month or 1)) > (self.today.year, self.today.month)

    @property
    def message(self) -> str:
        return f"the period {self.period} has not begun: beneficiaries are reported after"


class ServicesMustBeDistinct:
    field = "services"

    def __init__(self, services: tuple[ServiceKind, ...]) -> None:
        self.services = services

    def is_broken(self) -> bool:
        return len(set(self.services)) != len(self.services)

    @property
    def message(self) -> str:
        return "a service is listed more than once"


class UpdateMustNameAPart:
    """A profile update sends at least one part: an empty one is a client's mistake, not a
    change."""

    field = None
    message = "send at least one of: address, capacity, services, contact, beneficiaries"

    def __init__(self, *parts: object) -> None:
        self.parts = parts

    def is_broken(self) -> bool:
        return all(part is None for part in self.parts)
