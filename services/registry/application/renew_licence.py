from __future__ import annotations

from datetime import date
from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.application.licence_fields import Issuer, LicenceNumber
from services.registry.domain.licence import Licence
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class RenewLicence(Command, frozen=True):
    """Record the next licence of a kind the institution holds (or held until revoked)."""

    licence_id: UUID
    number: LicenceNumber
    issuer: Issuer
    issued_on: date
    valid_until: date | None = None


async def renew_licence(cmd: RenewLicence, uow: UnitOfWork, clock: Clock) -> Licence:
    licence = await uow.get(Licence, cmd.licence_id)
    await open_institution(uow, licence.institution_id)
    licence.renew(
        number=cmd.number,
        issuer=cmd.issuer,
        issued_on=cmd.issued_on,
        valid_until=cmd.valid_until,
        today=clock.today(uow.tenant),
    )
    return licence


RenewLicence.examples = {
    "Renewed for five years": RenewLicence(
        licence_id=UUID(int=0),
        number="460/2345/107.4/2026",
        issuer="Dinas Sosial Provinsi Jawa Timur",
        issued_on=date(2026, 5, 4),
        valid_until=date(2031, 5, 4),
    )
}
