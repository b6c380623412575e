from __future__ import annotations

from uuid import UUID

from services.registry.application.unit_lookup import UnitCode, find_unit
from services.registry.domain.organisation_unit import OrganisationUnit, check_unit_authority
from shared.domain.errors import RuleBroken
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.domain.messages import Message
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class MergeUnit(Command, frozen=True):
    """Merge a council into another open one of the same kind (`into`: its code; a branch
    only into a branch of the same PDM or PDA), with the reason. A branch's institutions
    then move to `into` (closed ones stay); a PDM's or PDA's institutions and branches stay
    under it."""

    unit_id: UUID
    into: UnitCode
    reason: Reason


async def merge_unit(cmd: MergeUnit, uow: UnitOfWork, actor: Actor) -> OrganisationUnit:
    unit = await uow.get(OrganisationUnit, cmd.unit_id)
    check_unit_authority(actor.scope, unit.kind, unit.code)
    target = await find_unit(uow, unit.kind, cmd.into)
    if target is None:
        raise RuleBroken(
            Message("{kind} {code} is not recorded", kind=unit.kind.upper(), code=cmd.into),
            field="into",
        )
    unit.merge_into(target)
    return unit


MergeUnit.examples = {
    "Two branches become one": MergeUnit(
        unit_id=UUID(int=0), into="357802", reason=DECISION_EXAMPLE
    )
}
