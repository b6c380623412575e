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
    # Already flagged so: nothing to record. A rule may ask twice along two paths (a
    # complaint about a closed institution is flagged at its receipt or at the closure,
    # whichever cases learns of last, and both when replayed).
    if cmd.flag not in complaint.flags:
        complaint.raise_flag(cmd.flag)
    return complaint
