from __future__ import annotations

from datetime import date
from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.application.licence_fields import Issuer, LicenceNumber
from services.registry.domain.licence import Licence, LicenceKind, licence_id
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class RenewLicence(Command, frozen=True):
    """Record the next licence of a kind the institution holds (or held until revoked)."""

    institution_id: UUID
    kind: LicenceKind
    number: LicenceNumber
    issuer: Issuer
    issued_on: date
    valid_until: date | None = None


async def renew_licence(cmd: RenewLicence, uow: UnitOfWork, clock: Clock) -> Licence:
    await open_institution(uow, cmd.institution_id)
    licence = await uow.get(Licence, licence_id(cmd.institution_id, cmd.kind))
    licence.renew(
        number=cmd.number,
        issuer=cmd.issuer,
        issued_on=cmd.issued_on,
        valid_until=cmd.valid_until,
        today=clock.today(),
    )
    return licence


RenewLicence.examples = {
    "Renewed for five years": RenewLicence(
        institution_id=UUID(int=0),
        kind=LicenceKind.OPERATING,
        number="460/2345/107.4/2026",
        issuer="Dinas Sosial Provinsi Jawa Timur",
        issued_on=date(2026, 5, 4),
        valid_until=date(2031, 5, 4),
    )
}
