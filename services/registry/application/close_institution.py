from __future__ import annotations

from uuid import UUID

from services.registry.domain.institution import Institution
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class CloseInstitution(Command, frozen=True):
    """Close an institution for good, with the reason (a suspended one is reinstated first)."""

    institution_id: UUID
    reason: Reason


async def close_institution(cmd: CloseInstitution, uow: UnitOfWork) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    institution.close()
    return institution


CloseInstitution.examples = {
    "A decision of the council": CloseInstitution(
        institution_id=UUID(int=0), reason=DECISION_EXAMPLE
    )
}
