from __future__ import annotations

from services.registry.domain.institution import Institution, InstitutionType, Owner
from shared.eventstore.commands import Decision
from shared.eventstore.stores import TenantApplication


def register_institution(
    app: TenantApplication,
    *,
    name: str,
    kind: InstitutionType,
    owner: Owner,
    pdm: str,
    address: str | None,
) -> Decision:
    institution = Institution.register(
        tenant=app.tenant, name=name, kind=kind, owner=owner, pdm=pdm, address=address
    )
    return Decision.saving(institution, status=201)
