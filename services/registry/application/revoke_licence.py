from __future__ import annotations

from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.domain.licence import Licence
from shared.domain.fields import Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class RevokeLicence(Command, frozen=True):
    """Record that the issuer withdrew a licence, with the reason."""

    licence_id: UUID
    reason: Reason


async def revoke_licence(cmd: RevokeLicence, uow: UnitOfWork) -> Licence:
    licence = await uow.get(Licence, cmd.licence_id)
    await open_institution(uow, licence.institution_id)
    licence.revoke()
    return licence


RevokeLicence.examples = {
    "Withdrawn by the social office": RevokeLicence(
        licence_id=UUID(int=0),
        reason="Surat Dinas Sosial No. 460/99/107.4/2026: pencabutan izin",
    )
}
