from __future__ import annotations

from uuid import UUID

from services.registry.domain.accreditation import Accreditation, accreditation_id
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class ExpireAccreditation(Command, frozen=True):
    """The date of a decision passed (issued by the scheduler, never over HTTP): it expires
    if it is still the one in force. A closed institution's accreditation expires too: time
    passing is no change anyone makes."""

    institution_id: UUID
    decision_id: UUID


async def expire_accreditation(cmd: ExpireAccreditation, uow: UnitOfWork) -> Accreditation:
    accreditation = await uow.get(Accreditation, accreditation_id(cmd.institution_id))
    accreditation.expire(cmd.decision_id)
    return accreditation
