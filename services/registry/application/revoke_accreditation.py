from __future__ import annotations

from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.domain.accreditation import (
    NO_ACCREDITATION_IN_FORCE,
    Accreditation,
    accreditation_id,
)
from shared.domain.errors import NotFound, RuleBroken
from shared.domain.fields import Reason
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class RevokeAccreditation(Command, frozen=True):
    """Record the board's revocation of the accreditation in force, with the reason."""

    institution_id: UUID
    reason: Reason


async def revoke_accreditation(
    cmd: RevokeAccreditation, uow: UnitOfWork, clock: Clock
) -> Accreditation:
    await open_institution(uow, cmd.institution_id)
    try:
        accreditation = await uow.get(Accreditation, accreditation_id(cmd.institution_id))
    except NotFound:
        # Never assessed: the institution exists, it holds nothing to revoke.
        raise RuleBroken(NO_ACCREDITATION_IN_FORCE, field="status") from None
    accreditation.revoke(clock.today(uow.tenant))
    return accreditation


RevokeAccreditation.examples = {
    "A decision of the board": RevokeAccreditation(
        institution_id=UUID(int=0), reason="Keputusan BAN-PS No. 45/BAN-PS/2026: pencabutan"
    )
}
