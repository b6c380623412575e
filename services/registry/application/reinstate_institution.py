from __future__ import annotations

from uuid import UUID

from services.registry.domain.institution import Institution
from shared.eventstore.commands import Decision, load
from shared.eventstore.stores import TenantApplication


def reinstate_institution(
    app: TenantApplication, institution_id: UUID, *, expected_version: int | None
) -> Decision:
    institution = load(app, Institution, institution_id, expected_version=expected_version)
    institution.reinstate()
    return Decision.saving(institution)
