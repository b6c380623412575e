from __future__ import annotations

from uuid import UUID

from services.registry.application.unit_lookup import BranchCode, check_placement
from services.registry.domain.institution import Institution
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class MoveInstitution(Command, frozen=True):
    """Move an institution to another branch of its PDM (`unit`: a PCM code, or a PCA
    for 'Aisyiyah), or directly under its PDM (`unit` null), with the reason — e.g. after
    its branch merged."""

    institution_id: UUID
    unit: BranchCode | None
    reason: Reason


async def move_institution(cmd: MoveInstitution, uow: UnitOfWork) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    institution.move_to_unit(cmd.unit)
    await check_placement(uow, institution.owner, institution.pdm, cmd.unit)
    return institution


MoveInstitution.examples = {
    "To the branch its old one merged into": MoveInstitution(
        institution_id=UUID(int=0), unit="357802", reason=DECISION_EXAMPLE
    )
}
