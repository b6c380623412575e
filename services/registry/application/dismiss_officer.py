from __future__ import annotations

from datetime import date
from uuid import UUID

from services.registry.domain.institution import Institution
from shared.domain.fields import DECISION_EXAMPLE, Reason
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class DismissOfficer(Command, frozen=True):
    """Dismiss an officer before their term ends, with the reason; they no longer serve from
    `dismissed_on` (today when left out)."""

    institution_id: UUID
    officer_id: UUID
    reason: Reason
    dismissed_on: date | None = None


async def dismiss_officer(cmd: DismissOfficer, uow: UnitOfWork, clock: Clock) -> Institution:
    institution = await uow.get(Institution, cmd.institution_id)
    today = clock.today(uow.tenant)
    institution.dismiss_officer(cmd.officer_id, on=cmd.dismissed_on or today, today=today)
    return institution


DismissOfficer.examples = {
    "A decision of the council": DismissOfficer(
        institution_id=UUID(int=0), officer_id=UUID(int=1), reason=DECISION_EXAMPLE
    )
}
