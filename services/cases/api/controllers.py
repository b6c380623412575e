"""Complaint centre: receive and read complaints; the directory of known institutions."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from services.cases.application.receive_complaint import ReceiveComplaint
from services.cases.projections import complaints, institution_directory
from services.cases.projections.complaints import ComplaintView
from services.cases.projections.institution_directory import DirectoryEntry
from shared.audit.as_of import RecordAsOf
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, PastRecords
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.personal.masking import check_unmask, mask

CASE_STAFF = (Role.CASE_WORKER, Role.WILAYAH_ADMIN, Role.INSTITUTION_STAFF, Role.PDM_OPERATOR)
# Who may list complainants in full.
UNMASKERS = (Role.CASE_WORKER, Role.WILAYAH_ADMIN)


class ComplaintController(Controller):
    path = "/v1/tenants/{tenant:str}/complaints"
    guards = [tenant_guard]
    tags = ["complaints"]

    receive = expose(ReceiveComplaint, "/", guards=[requires_roles(*CASE_STAFF)], status_code=201)

    @get(
        "/",
        guards=[requires_roles(*CASE_STAFF, Role.AUDITOR, Role.NATIONAL_ADMIN)],
        summary="List complaints (complainants masked unless `unmask=true`)",
    )
    async def list_complaints(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        unmask: Annotated[
            bool,
            Parameter(
                description="Show complainants' names and contacts in full (case workers and "
                "the province's administrator; recorded)"
            ),
        ] = False,
    ) -> list[ComplaintView]:
        if unmask:
            check_unmask(request, tenant, "complaints", UNMASKERS)
        found = await read_many(
            db, tenant, actor_scope, complaints.list_complaints, limit=limit, offset=offset
        )
        if unmask:
            return found
        return [
            msgspec.structs.replace(
                c,
                complainant_name=mask(c.complainant_name),
                complainant_contact=mask(c.complainant_contact),
            )
            for c in found
        ]

    @get(
        "/{complaint_id:uuid}",
        guards=[requires_roles(*CASE_STAFF, Role.AUDITOR, Role.NATIONAL_ADMIN)],
        summary="One complaint: now (its read model), or as of a date (its events)",
    )
    async def get_complaint(
        self,
        tenant: FromPath[str],
        complaint_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        past: NamedDependency[PastRecords],
        as_of: AsOf = None,
    ) -> Response[ComplaintView | RecordAsOf]:
        if as_of is not None:
            return await past.read(tenant, actor_scope, "Complaint", complaint_id, as_of)
        return await read_one(
            db, tenant, actor_scope, complaints.get_complaint, complaint_id, what="complaint"
        )


class DirectoryController(Controller):
    path = "/v1/tenants/{tenant:str}/directory/institutions"
    guards = [tenant_guard, requires_roles(*READERS)]
    tags = ["directory"]

    @get("/", summary="Institutions cases knows of (from the registry's events)")
    async def list_directory(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> list[DirectoryEntry]:
        return await read_many(db, tenant, actor_scope, institution_directory.list_directory)
