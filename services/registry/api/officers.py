"""An institution's officers: appoint, dismiss, list (names masked unless `unmask=true`)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from services.registry.application.appoint_officer import AppointOfficer
from services.registry.application.dismiss_officer import DismissOfficer
from services.registry.domain.officers import OfficerRole
from services.registry.projections import governance
from services.registry.projections.governance import OfficerView
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.personal.masking import check_unmask, mask

# Appointing and dismissing is the councils' (the province, the institution's PDM): an
# institution's own staff do not appoint their head.
APPOINTERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
# Who may read officers' names, NIK and phone in full: those who appoint them.
UNMASKERS = (Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
UNMASK = Annotated[
    bool,
    Parameter(
        description="Show names, NIK and phone in full (the province's administrator and PDM "
        "operators; recorded)"
    ),
]


def masked(officer: OfficerView) -> OfficerView:
    return msgspec.structs.replace(
        officer,
        full_name=mask(officer.full_name) or "",
        nik=mask(officer.nik) or "",
        phone=mask(officer.phone),
    )


class OfficerController(Controller):
    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["officers"]

    appoint = expose(AppointOfficer, "/{institution_id:uuid}/officers", guards=[APPOINTERS])
    dismiss = expose(
        DismissOfficer,
        "/{institution_id:uuid}/officers/{officer_id:uuid}/dismiss",
        guards=[APPOINTERS],
    )

    @get(
        "/{institution_id:uuid}/officers",
        guards=[requires_roles(*READERS)],
        summary="An institution's officers, the latest term first (masked unless `unmask=true`)",
    )
    async def list_officers(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        role: FromQuery[OfficerRole | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        unmask: UNMASK = False,
    ) -> list[OfficerView]:
        if unmask:
            check_unmask(request, tenant, "officers", UNMASKERS)
        found = await read_many(
            db,
            tenant,
            actor_scope,
            governance.officers_of,
            institution_id,
            role=role,
            limit=limit,
            offset=offset,
        )
        return found if unmask else [masked(o) for o in found]
