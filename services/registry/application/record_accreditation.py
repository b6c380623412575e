from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

import msgspec

from services.registry.application.institution_state import open_institution
from services.registry.configuration import accreditation_validity
from services.registry.domain.accreditation import (
    Accreditation,
    CertificateNumber,
    CertificateNumberMustBeUnused,
    Grade,
    Scores,
    accreditation_id,
    certificate_claim_id,
)
from shared.domain.errors import NotFound, OutOfScope
from shared.domain.rules import check_rule
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork

CertificateNo = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
Regulation = Annotated[
    str,
    msgspec.Meta(
        min_length=2,
        max_length=200,
        pattern=r"\S",
        description="the regulation the decision was made under, e.g. Permensos 8/2025",
    ),
]


class RecordAccreditation(Command, frozen=True):
    """Record a decision of the accreditation board (BAN-PS): a grade A, B or C until a
    date (by default 5, 3 or 2 years from the decision), or not accredited. It replaces the
    institution's current decision."""

    institution_id: UUID
    grade: Grade
    scores: Scores
    decided_on: date
    regulation: Regulation
    certificate_number: CertificateNo | None = None
    valid_until: date | None = None


async def record_accreditation(
    cmd: RecordAccreditation, uow: UnitOfWork, clock: Clock
) -> Accreditation:
    institution = await open_institution(uow, cmd.institution_id)
    number = cmd.certificate_number.strip() if cmd.certificate_number is not None else None
    if number is not None:
        check_rule(CertificateNumberMustBeUnused(number, await _claimed(uow, number)))
    try:
        accreditation = await uow.get(Accreditation, accreditation_id(institution.id))
    except NotFound:
        accreditation = Accreditation.open(institution.id, institution.pdm)
        uow.add(accreditation)
    accreditation.decide(
        grade=cmd.grade,
        scores=cmd.scores,
        decided_on=cmd.decided_on,
        certificate_number=number,
        regulation=cmd.regulation,
        valid_until=cmd.valid_until,
        today=clock.today(uow.tenant),
        validity=accreditation_validity(),
    )
    if number is not None:
        # Saved with the decision: a concurrent decision claiming the same number writes
        # the same record's first version, and one of the two commits is refused (409).
        uow.add(CertificateNumber.claim(uow.tenant, number, institution.id, institution.pdm))
    return accreditation


async def _claimed(uow: UnitOfWork, number: str) -> bool:
    try:
        await uow.get(CertificateNumber, certificate_claim_id(uow.tenant, number))
    except NotFound:
        return False
    except OutOfScope:
        # Claimed for an institution of another PDM: taken all the same.
        return True
    return True


RecordAccreditation.examples = {
    "Grade B, valid three years": RecordAccreditation(
        institution_id=UUID(int=0),
        grade=Grade.B,
        scores=Scores(
            programme=82, human_resources=75, management=80, facilities=70, service_results=78
        ),
        decided_on=date(2026, 3, 12),
        regulation="Permensos 8/2025",
        certificate_number="123/BAN-PS/LKS/III/2026",
    ),
    "Not accredited": RecordAccreditation(
        institution_id=UUID(int=0),
        grade=Grade.NOT_ACCREDITED,
        scores=Scores(
            programme=40, human_resources=35, management=50, facilities=45, service_results=38
        ),
        decided_on=date(2026, 3, 12),
        regulation="Permensos 8/2025",
    ),
}
