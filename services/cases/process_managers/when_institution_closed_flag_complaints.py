"""When the registry closes an institution, every complaint about it is flagged: its
children or clients have to be placed elsewhere and a case worker must follow up. The
complaints are those cases' read model shows and those the rule has noted at their receipt;
one neither holds yet is flagged when the rule notes it
(`when_complaint_received_flag_if_institution_closed`)."""

from __future__ import annotations

from functools import singledispatchmethod

from services.cases.application.flag_complaint import FlagComplaint
from services.cases.domain.complaint import ComplaintFlag
from services.cases.projections.complaints import complaints_naming
from services.cases.projections.institution_complaints import complaints_about
from services.registry.domain.institution import Institution
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.service_layer.process_managers import ProcessManager


class WhenInstitutionClosedFlagComplaints(ProcessManager):
    name = "when-institution-closed-flag-complaints"

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Other registry events change nothing here."""

    @on.register
    async def _(
        self, event: Institution.Closed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        reason = f"institution closed: {envelope.meta.reason or 'no reason given'}"
        shown = await complaints_naming(conn, envelope.aggregate_id)
        noted = await complaints_about(conn, envelope.aggregate_id)
        for complaint_id in [*shown, *(c for c in noted if c not in shown)]:
            await self.issue(
                FlagComplaint(
                    complaint_id=complaint_id,
                    flag=ComplaintFlag.INSTITUTION_CLOSED,
                    reason=reason[:2000],
                ),
                tenant=envelope.tenant,
                cause=envelope,
                about=complaint_id,
            )
