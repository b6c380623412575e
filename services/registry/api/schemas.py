"""Request and response bodies of the registry API (msgspec Structs)."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from services.registry.domain.institution import InstitutionType, Owner

Name = Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")]
PdmCode = Annotated[str, msgspec.Meta(pattern=r"^\d{4}$", description="4-digit regency/city code")]
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]


class RegisterInstitution(msgspec.Struct, forbid_unknown_fields=True):
    examples: ClassVar[dict[str, RegisterInstitution]]

    name: Name
    kind: InstitutionType
    pdm: PdmCode
    owner: Owner = Owner.MUHAMMADIYAH
    address: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class RenameInstitution(msgspec.Struct, forbid_unknown_fields=True):
    examples: ClassVar[dict[str, RenameInstitution]]

    name: Name


class GovernanceChange(msgspec.Struct, forbid_unknown_fields=True):
    examples: ClassVar[dict[str, GovernanceChange]]

    reason: Reason


# What the docs page offers to send (`shared.http.openapi`): valid as they stand in
# province 35, Jawa Timur (PDM 3578 is Kota Surabaya).
RegisterInstitution.examples = {
    "A children's home in Kota Surabaya": RegisterInstitution(
        name="LKSA Muhammadiyah Wiyung",
        kind=InstitutionType.LKSA,
        pdm="3578",
        owner=Owner.MUHAMMADIYAH,
        address="Jl. Raya Menganti No. 52, Wiyung, Surabaya",
    )
}
RenameInstitution.examples = {
    "Its full name": RenameInstitution(name="LKSA Muhammadiyah Wiyung Surabaya"),
}
GovernanceChange.examples = {
    "A decision of the council": GovernanceChange(
        reason="Keputusan rapat pleno MPKS PWM Jawa Timur No. 12/KEP/2026"
    ),
}
