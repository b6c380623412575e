from __future__ import annotations

from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.domain.accreditation import Accreditation, accreditation_id
from shared.domain.fields import Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class RevokeAccreditation(Command, frozen=True):
    """Record the board's revocation of the accreditation in force, with the reason."""

    institution_id: UUID
    reason: Reason


async def revoke_accreditation(cmd: RevokeAccreditation, uow: UnitOfWork) -> Accreditation:
    await open_institution(uow, cmd.institution_id)
    accreditation = await uow.get(Accreditation, accreditation_id(cmd.institution_id))
    accreditation.revoke()
    return accreditation


RevokeAccreditation.examples = {
    "A decision of the board": RevokeAccreditation(
        institution_id=UUID(int=0), reason="Keputusan BAN-PS No. 45/BAN-PS/2026: pencabutan"
    )
}
