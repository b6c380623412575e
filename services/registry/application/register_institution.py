from __future__ import annotations

from typing import Annotated

import msgspec

from services.registry.application.fields import Name
from services.registry.application.unit_lookup import BranchCode, check_placement
from services.registry.domain.institution import Institution, InstitutionType, Owner
from shared.domain.fields import PdmCode
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class RegisterInstitution(Command, frozen=True):
    """Register an institution (AUMSos)."""

    name: Name
    kind: InstitutionType
    pdm: PdmCode
    owner: Owner = Owner.MUHAMMADIYAH
    address: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    # The branch it sits under: a PCM (PCA for 'Aisyiyah) of its PDM; none: the PDM itself.
    unit: BranchCode | None = None


async def register_institution(cmd: RegisterInstitution, uow: UnitOfWork) -> Institution:
    institution = Institution.register(
        tenant=uow.tenant,
        name=cmd.name,
        kind=cmd.kind,
        owner=cmd.owner,
        pdm=cmd.pdm,
        address=cmd.address,
        unit=cmd.unit,
    )
    await check_placement(uow, cmd.owner, cmd.pdm, cmd.unit)
    uow.add(institution)
    return institution


# Valid as they stand in province 35, Jawa Timur (PDM 3578 is Kota Surabaya).
RegisterInstitution.examples = {
    "A children's home in Kota Surabaya": RegisterInstitution(
        name="LKSA Muhammadiyah Wiyung",
        kind=InstitutionType.LKSA,
        pdm="3578",
        owner=Owner.MUHAMMADIYAH,
        address="Jl. Raya Menganti No. 52, Wiyung, Surabaya",
    )
}
