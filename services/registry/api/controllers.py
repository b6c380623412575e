"""Institutions: register, read, rename, suspend, reinstate, close."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from services.registry.application.close_institution import CloseInstitution
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.reinstate_institution import ReinstateInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.application.suspend_institution import SuspendInstitution
from services.registry.domain.institution import InstitutionStatus, InstitutionType
from services.registry.projections import institutions
from services.registry.projections.institutions import InstitutionView
from shared.audit.as_of import RecordAsOf
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, PastRecords, moment
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard

WRITERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
GOVERNORS = requires_roles(Role.WILAYAH_ADMIN)


class InstitutionController(Controller):
    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["institutions"]

    register = expose(RegisterInstitution, "/", guards=[WRITERS], status_code=201)
    rename = expose(RenameInstitution, "/{institution_id:uuid}/rename", guards=[WRITERS])
    suspend = expose(SuspendInstitution, "/{institution_id:uuid}/suspend", guards=[GOVERNORS])
    reinstate = expose(ReinstateInstitution, "/{institution_id:uuid}/reinstate", guards=[GOVERNORS])
    close = expose(CloseInstitution, "/{institution_id:uuid}/close", guards=[GOVERNORS])

    @get("/", guards=[requires_roles(*READERS)], summary="List institutions, now or as of a date")
    async def list_institutions(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        status: FromQuery[InstitutionStatus | None] = None,
        kind: FromQuery[InstitutionType | None] = None,
        pdm: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        as_of: AsOf = None,
    ) -> list[InstitutionView]:
        return await read_many(
            db,
            tenant,
            actor_scope,
            institutions.list_institutions,
            status=status,
            kind=kind,
            pdm=pdm,
            limit=limit,
            offset=offset,
            as_of=moment(as_of),
        )

    @get(
        "/{institution_id:uuid}",
        guards=[requires_roles(*READERS)],
        summary="One institution: now (its read model), or as of a date (its events)",
    )
    async def get_institution(
        self,
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        past: NamedDependency[PastRecords],
        as_of: AsOf = None,
    ) -> Response[InstitutionView | RecordAsOf]:
        if as_of is not None:
            return await past.read(tenant, actor_scope, "Institution", institution_id, as_of)
        return await read_one(
            db,
            tenant,
            actor_scope,
            institutions.get_institution,
            institution_id,
            what="institution",
        )
