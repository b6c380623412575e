from __future__ import annotations

from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.domain.licence import Licence, LicenceKind, licence_id
from shared.domain.fields import Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class RevokeLicence(Command, frozen=True):
    """Record that the issuer withdrew a licence, with the reason."""

    institution_id: UUID
    kind: LicenceKind
    reason: Reason


async def revoke_licence(cmd: RevokeLicence, uow: UnitOfWork) -> Licence:
    await open_institution(uow, cmd.institution_id)
    licence = await uow.get(Licence, licence_id(cmd.institution_id, cmd.kind))
    licence.revoke()
    return licence


RevokeLicence.examples = {
    "Withdrawn by the social office": RevokeLicence(
        institution_id=UUID(int=0),
        kind=LicenceKind.OPERATING,
        reason="Surat Dinas Sosial No. 460/99/107.4/2026: pencabutan izin",
    )
}
