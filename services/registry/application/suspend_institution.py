from __future__ import annotations

from uuid import UUID

from services.registry.domain.institution import Institution
from shared.eventstore.commands import Decision, load
from shared.eventstore.stores import TenantApplication


def suspend_institution(
    app: TenantApplication, institution_id: UUID, *, expected_version: int | None
) -> Decision:
    """The reason travels in the command context into the event's metadata."""
    institution = load(app, Institution, institution_id, expected_version=expected_version)
    institution.suspend()
    return Decision.saving(institution)
