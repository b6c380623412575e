from __future__ import annotations

from uuid import UUID

from services.registry.domain.institution import Institution
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class ReinstateInstitution(Command, frozen=True):
    """Reinstate a suspended institution, with the reason."""

    institution_id: UUID
    reason: Reason


async def reinstate_institution(cmd: ReinstateInstitution, uow: UnitOfWork) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    institution.reinstate()
    return institution


ReinstateInstitution.examples = {
    "A decision of the council": ReinstateInstitution(
        institution_id=UUID(int=0), reason=DECISION_EXAMPLE
    )
}
