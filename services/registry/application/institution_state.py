"""What every change to an institution's accreditation and licences checks first: the
institution exists, lies in the actor's reach and is not closed."""

from __future__ import annotations

from uuid import UUID

from services.registry.domain.institution import Institution, InstitutionStatus
from shared.domain.rules import check_rule
from shared.service_layer.unit_of_work import UnitOfWork


class InstitutionMustBeOpen:
    """A closed institution's record is kept for reading only: nothing more is recorded."""

    field = "institution_id"

    def __init__(self, institution: Institution) -> None:
        self.institution = institution

    def is_broken(self) -> bool:
        return self.institution.status is InstitutionStatus.CLOSED

    @property
    def message(self) -> str:
        return f"institution {self.institution.id} is closed: nothing more is recorded for it"


async def open_institution(uow: UnitOfWork, institution_id: UUID) -> Institution:
    """The institution (404, or 403 outside the actor's scope), refused when closed."""
    institution = await uow.get(Institution, institution_id)
    check_rule(InstitutionMustBeOpen(institution))
    return institution
