from __future__ import annotations

from uuid import UUID

from services.registry.domain.institution import Institution
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class SuspendInstitution(Command, frozen=True):
    """Suspend an institution, with the reason."""

    institution_id: UUID
    reason: Reason


async def suspend_institution(cmd: SuspendInstitution, uow: UnitOfWork) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    institution.suspend()
    return institution


SuspendInstitution.examples = {
    "A decision of the council": SuspendInstitution(
        institution_id=UUID(int=0), reason=DECISION_EXAMPLE
    )
}
