"""When a complaint comes in about an institution the registry has closed, it is flagged as
the closure flags the complaints it finds (`when_institution_closed_flag_complaints`).

The two rules run in different transactions at their own pace: this one follows cases' own
log, the closure comes from the registry's stream, and either may run first however the
events were ordered in time. So each leaves the other what it needs under one lock, the
institution's row in the directory: here the complaint is noted as naming the institution,
then the row is read held (`status_held`); the closure changes the row (the directory's
reaction, before the closure's rule in the consumer's transaction) and then reads the
complaints noted. Whichever takes the row second sees what the first left, so every
complaint about a closed institution is flagged by one of them; should both ask (a replay,
a rebuild), the flag is raised once (`flag_complaint`).
"""

from __future__ import annotations

from functools import singledispatchmethod

from services.cases.application.flag_complaint import FlagComplaint
from services.cases.domain.complaint import Complaint, ComplaintFlag
from services.cases.projections.institution_complaints import TABLE, note_complaint
from services.cases.projections.institution_directory import status_held
from services.registry.domain.institution import InstitutionStatus
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.service_layer.process_managers import ProcessManager


class WhenComplaintReceivedFlagIfInstitutionClosed(ProcessManager):
    name = "when-complaint-received-flag-if-institution-closed"
    tables = (TABLE,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Other events of cases change nothing here."""

    @on.register
    async def _(
        self, event: Complaint.Received, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        if event.institution_id is None:
            return
        await note_complaint(conn, envelope.tenant, event.institution_id, envelope.aggregate_id)
        if await status_held(conn, event.institution_id) != InstitutionStatus.CLOSED:
            return
        await self.issue(
            FlagComplaint(
                complaint_id=envelope.aggregate_id,
                flag=ComplaintFlag.INSTITUTION_CLOSED,
                reason="institution closed: the complaint names a closed institution",
            ),
            tenant=envelope.tenant,
            cause=envelope,
            about=envelope.aggregate_id,
        )
