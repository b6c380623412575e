from __future__ import annotations

from uuid import UUID

from services.registry.application.fields import Name
from services.registry.domain.organisation_unit import OrganisationUnit, check_unit_authority
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class RenameUnit(Command, frozen=True):
    """Rename a council (send If-Match with the version you read)."""

    unit_id: UUID
    name: Name


async def rename_unit(cmd: RenameUnit, uow: UnitOfWork, actor: Actor) -> OrganisationUnit:
    unit = await uow.get(OrganisationUnit, cmd.unit_id)
    check_unit_authority(actor.scope, unit.kind, unit.code)
    unit.rename(cmd.name)
    return unit


RenameUnit.examples = {
    "Its full name": RenameUnit(unit_id=UUID(int=0), name="PCM Karang Pilang Surabaya"),
}
