from __future__ import annotations

from uuid import UUID

from services.registry.domain.organisation_unit import OrganisationUnit, check_unit_authority
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class CloseUnit(Command, frozen=True):
    """Close a council for good, with the reason; its record stays, for reading only."""

    unit_id: UUID
    reason: Reason


async def close_unit(cmd: CloseUnit, uow: UnitOfWork, actor: Actor) -> OrganisationUnit:
    unit = await uow.get(OrganisationUnit, cmd.unit_id)
    check_unit_authority(actor.scope, unit.kind, unit.code)
    unit.close()
    return unit


CloseUnit.examples = {
    "A decision of the council": CloseUnit(unit_id=UUID(int=0), reason=DECISION_EXAMPLE)
}
