from __future__ import annotations

from uuid import UUID

from services.registry.application.fields import Name
from services.registry.domain.institution import Institution
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class RenameInstitution(Command, frozen=True):
    """Rename an institution (send If-Match with the version you read)."""

    institution_id: UUID
    name: Name


async def rename_institution(cmd: RenameInstitution, uow: UnitOfWork) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    institution.rename(cmd.name)
    return institution


RenameInstitution.examples = {
    "Its full name": RenameInstitution(
        institution_id=UUID(int=0), name="LKSA Muhammadiyah Wiyung Surabaya"
    ),
}
