"""An institution's governance timeline."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from services.registry.api.officers import UNMASK, UNMASKERS
from services.registry.projections import governance
from services.registry.projections.governance import Timeline
from shared.db.pool import DbConnection, DbPool
from shared.domain.organisation import Scope
from shared.http.params import Offset
from shared.http.reads import read_one
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.personal.masking import check_unmask, mask


class GovernanceController(Controller):
    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["institutions"]

    @get(
        "/{institution_id:uuid}/governance",
        guards=[requires_roles(*READERS)],
        summary="An institution's governance timeline, oldest first: status changes, officers "
        "appointed and dismissed, profile changes (officers' names masked unless "
        "`unmask=true`)",
    )
    async def timeline(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        unmask: UNMASK = False,
    ) -> Response[Timeline]:
        if unmask:
            check_unmask(request, tenant, "governance", UNMASKERS)

        async def page(conn: DbConnection, record_id: UUID) -> Timeline | None:
            return await governance.timeline_of(conn, record_id, limit=limit, offset=offset)

        found = await read_one(db, tenant, actor_scope, page, institution_id, what="institution")
        if unmask:
            return found
        entries = [
            msgspec.structs.replace(e, officer_name=mask(e.officer_name))
            for e in found.content.entries
        ]
        return Response(
            msgspec.structs.replace(found.content, entries=entries), headers=found.headers
        )
