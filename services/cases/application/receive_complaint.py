from __future__ import annotations

from uuid import UUID

from services.cases.domain.complaint import Channel, Complaint, KnownInstitution
from shared.domain.organisation import Scope
from shared.eventstore.commands import Decision
from shared.eventstore.stores import TenantApplication


def receive_complaint(
    app: TenantApplication,
    *,
    channel: Channel,
    summary: str,
    concerns_child: bool,
    institution_id: UUID | None,
    institution: KnownInstitution | None,
    received_in: Scope,
) -> Decision:
    complaint = Complaint.receive(
        channel=channel,
        summary=summary,
        concerns_child=concerns_child,
        institution_id=institution_id,
        institution=institution,
        received_in=received_in,
    )
    return Decision.saving(complaint, status=201)
