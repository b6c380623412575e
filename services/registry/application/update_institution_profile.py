from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.registry.domain.institution import Institution
from services.registry.domain.profile import (
    MAX_PEOPLE,
    Address,
    Beneficiaries,
    BeneficiaryReport,
    Contact,
    ServiceKind,
    UpdateMustNameAPart,
)
from shared.domain.rules import check_rule
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class UpdateInstitutionProfile(Command, frozen=True):
    """Update an institution's profile: each part sent replaces the one recorded, parts left
    out stay (send If-Match with the version you read)."""

    institution_id: UUID
    address: Address | None = None
    capacity: Annotated[int, msgspec.Meta(ge=0, le=MAX_PEOPLE)] | None = None
    services: Annotated[list[ServiceKind], msgspec.Meta(max_length=len(ServiceKind))] | None = None
    contact: Contact | None = None
    beneficiaries: BeneficiaryReport | None = None


async def update_institution_profile(
    cmd: UpdateInstitutionProfile, uow: UnitOfWork, clock: Clock
) -> Institution:
    check_rule(
        UpdateMustNameAPart(cmd.address, cmd.capacity, cmd.services, cmd.contact, cmd.beneficiaries)
    )
    institution = await uow.get(Institution, cmd.institution_id)
    institution.update_profile(
        tenant=uow.tenant,
        today=clock.today(uow.tenant),
        address=cmd.address,
        capacity=cmd.capacity,
        services=tuple(cmd.services) if cmd.services is not None else None,
        contact=cmd.contact,
        beneficiaries=cmd.beneficiaries,
    )
    return institution


# Valid in province 35 (3578 is Kota Surabaya).
UpdateInstitutionProfile.examples = {
    "A children's home after the 2025 count": UpdateInstitutionProfile(
        institution_id=UUID(int=0),
        address=Address(line="Jl. Raya Menganti No. 52, Wiyung, Surabaya", regency="3578"),
        capacity=60,
        services=[ServiceKind.RESIDENTIAL_CARE, ServiceKind.EDUCATION, ServiceKind.COUNSELLING],
        contact=Contact(phone="+62 31 766 0000", email="lksa.wiyung@contoh.id"),
        beneficiaries=BeneficiaryReport(
            period="2025", counts=Beneficiaries(children=52, families=18)
        ),
    ),
    "Only the capacity": UpdateInstitutionProfile(institution_id=UUID(int=0), capacity=45),
}
