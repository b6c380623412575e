"""Organisation units (PDM, PCM, PDA, PCA): open, rename, merge, close, read now or as of a
date; and placing an institution under a branch."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from services.registry.application.close_unit import CloseUnit
from services.registry.application.merge_unit import MergeUnit
from services.registry.application.move_institution import MoveInstitution
from services.registry.application.open_unit import OpenUnit
from services.registry.application.rename_unit import RenameUnit
from services.registry.domain.organisation_unit import UnitKind, UnitStatus
from services.registry.projections import policies, units
from services.registry.projections.policies import PolicyView
from services.registry.projections.units import UnitView
from shared.audit.as_of import RecordAsOf
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, PastRecords, moment
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard

# A PDM operator acts on the branches of its PDM; regency units are the province's
# (checked by the handlers: `check_unit_authority`).
UNIT_WRITERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)


class UnitController(Controller):
    path = "/v1/tenants/{tenant:str}/units"
    guards = [tenant_guard]
    tags = ["units"]

    open = expose(OpenUnit, "/", guards=[UNIT_WRITERS], status_code=201)
    rename = expose(RenameUnit, "/{unit_id:uuid}/rename", guards=[UNIT_WRITERS])
    merge = expose(MergeUnit, "/{unit_id:uuid}/merge", guards=[UNIT_WRITERS])
    close = expose(CloseUnit, "/{unit_id:uuid}/close", guards=[UNIT_WRITERS])

    @get("/", guards=[requires_roles(*READERS)], summary="List councils, now or as of a date")
    async def list_units(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        kind: FromQuery[UnitKind | None] = None,
        parent: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None,
        status: FromQuery[UnitStatus | None] = None,
        code: Annotated[str | None, Parameter(pattern=r"^\d{4}(\d{2})?$")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        as_of: AsOf = None,
    ) -> list[UnitView]:
        return await read_many(
            db,
            tenant,
            actor_scope,
            units.list_units,
            kind=kind,
            parent=parent,
            status=status,
            code=code,
            limit=limit,
            offset=offset,
            as_of=moment(as_of),
        )

    @get(
        "/{unit_id:uuid}",
        guards=[requires_roles(*READERS)],
        summary="One council: now (its read model), or as of a date (its events)",
    )
    async def get_unit(
        self,
        tenant: FromPath[str],
        unit_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        past: NamedDependency[PastRecords],
        as_of: AsOf = None,
    ) -> Response[UnitView | RecordAsOf]:
        if as_of is not None:
            return await past.read(tenant, actor_scope, "OrganisationUnit", unit_id, as_of)
        return await read_one(db, tenant, actor_scope, units.get_unit, unit_id, what="unit")

    @get(
        "/{unit_id:uuid}/inbox",
        guards=[requires_roles(*READERS)],
        summary="A council's approval inbox: the policies awaiting its decision, oldest first",
    )
    async def inbox(
        self,
        tenant: FromPath[str],
        unit_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> list[PolicyView]:
        # An unknown council (or one outside the reader's PDM) has no inbox: 404.
        await read_one(db, tenant, actor_scope, units.get_unit, unit_id, what="unit")
        return await read_many(
            db, tenant, actor_scope, policies.inbox, unit_id=unit_id, limit=limit, offset=offset
        )


class InstitutionUnitController(Controller):
    """Where an institution sits: beside the institution routes, kept apart from them."""

    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["institutions"]

    move = expose(MoveInstitution, "/{institution_id:uuid}/move", guards=[UNIT_WRITERS])
