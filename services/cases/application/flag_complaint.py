from __future__ import annotations

from uuid import UUID

from services.cases.domain.complaint import Complaint, ComplaintFlag
from shared.domain.fields import Reason
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class FlagComplaint(Command, frozen=True):
    """Flag a complaint for a case worker's attention, with the reason (issued by process
    managers when something happens to what the complaint is about)."""

    complaint_id: UUID
    flag: ComplaintFlag
    reason: Reason


async def flag_complaint(cmd: FlagComplaint, uow: UnitOfWork) -> Complaint:
    complaint = await uow.get(Complaint, cmd.complaint_id)
    complaint.raise_flag(cmd.flag)
    return complaint
