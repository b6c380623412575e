from __future__ import annotations

from datetime import date
from uuid import UUID

from services.registry.application.institution_state import open_institution
from services.registry.application.licence_fields import Issuer, LicenceNumber
from services.registry.domain.licence import (
    Licence,
    LicenceAlreadyRecorded,
    LicenceKind,
    licence_id,
)
from shared.domain.errors import NotFound
from shared.domain.rules import check_rule
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class RecordLicence(Command, frozen=True):
    """Record an institution's registration letter (Tanda Daftar) or operating licence
    (Izin Operasional); later ones of the same kind are renewals."""

    institution_id: UUID
    kind: LicenceKind
    number: LicenceNumber
    issuer: Issuer
    issued_on: date
    valid_until: date | None = None


async def record_licence(cmd: RecordLicence, uow: UnitOfWork, clock: Clock) -> Licence:
    institution = await open_institution(uow, cmd.institution_id)
    check_rule(LicenceAlreadyRecorded(cmd.kind, await _recorded(uow, institution.id, cmd.kind)))
    licence = Licence.record(
        institution_id=institution.id,
        pdm=institution.pdm,
        kind=cmd.kind,
        number=cmd.number,
        issuer=cmd.issuer,
        issued_on=cmd.issued_on,
        valid_until=cmd.valid_until,
        today=clock.today(uow.tenant),
    )
    uow.add(licence)
    return licence


async def _recorded(uow: UnitOfWork, institution_id: UUID, kind: LicenceKind) -> bool:
    try:
        await uow.get(Licence, licence_id(institution_id, kind))
    except NotFound:
        return False
    return True


RecordLicence.examples = {
    "An operating licence for five years": RecordLicence(
        institution_id=UUID(int=0),
        kind=LicenceKind.OPERATING,
        number="460/1234/107.4/2024",
        issuer="Dinas Sosial Provinsi Jawa Timur",
        issued_on=date(2024, 5, 2),
        valid_until=date(2029, 5, 2),
    )
}
