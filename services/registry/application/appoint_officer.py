from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import msgspec

from services.registry.domain.institution import Institution
from services.registry.domain.officers import OfficerRole
from services.registry.domain.profile import Phone
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class AppointOfficer(Command, frozen=True):
    """Appoint an officer (head, finance officer, ...) of an institution for a term, with the
    decision as the reason. Name, NIK and phone are personal data: stored encrypted,
    erasable. The new officer's id is in the institution's officers list."""

    institution_id: UUID
    role: OfficerRole
    full_name: Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")]
    nik: Annotated[
        str, msgspec.Meta(pattern=r"^\d{16}$", description="NIK: the 16-digit national id")
    ]
    term_start: date
    term_end: date
    reason: Reason
    phone: Phone | None = None


async def appoint_officer(cmd: AppointOfficer, uow: UnitOfWork) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    institution.appoint_officer(
        role=cmd.role,
        full_name=cmd.full_name,
        nik=cmd.nik,
        phone=cmd.phone,
        term_start=cmd.term_start,
        term_end=cmd.term_end,
    )
    return institution


AppointOfficer.examples = {
    "A head for the 2022-2027 term": AppointOfficer(
        institution_id=UUID(int=0),
        role=OfficerRole.HEAD,
        full_name="Ahmad Fauzi",
        nik="3578010101800001",
        phone="+62 812 0000 0001",
        term_start=date(2022, 12, 1),
        term_end=date(2027, 11, 30),
        reason=DECISION_EXAMPLE,
    )
}
