"""Social workers: register and read."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from services.hr.application.register_worker import RegisterWorker
from services.hr.projections import workers
from services.hr.projections.workers import WorkerView
from shared.audit.as_of import RecordAsOf
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, PastRecords, moment
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.personal.masking import check_unmask, mask

# Who may list workers' names in full.
UNMASKERS = (Role.HR_OFFICER, Role.WILAYAH_ADMIN)


class WorkerController(Controller):
    path = "/v1/tenants/{tenant:str}/workers"
    guards = [tenant_guard]
    tags = ["workers"]

    register = expose(
        RegisterWorker,
        "/",
        guards=[requires_roles(Role.HR_OFFICER, Role.WILAYAH_ADMIN)],
        status_code=201,
    )

    @get(
        "/",
        guards=[requires_roles(*READERS)],
        summary="List social workers, now or as of a date (names masked unless `unmask=true`)",
    )
    async def list_workers(
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
                description="Show names in full (HR officers and the province's administrator; "
                "recorded)"
            ),
        ] = False,
        as_of: AsOf = None,
    ) -> list[WorkerView]:
        if unmask:
            check_unmask(request, tenant, "workers", UNMASKERS)
        found = await read_many(
            db,
            tenant,
            actor_scope,
            workers.list_workers,
            limit=limit,
            offset=offset,
            as_of=moment(as_of),
        )
        if unmask:
            return found
        return [msgspec.structs.replace(w, full_name=mask(w.full_name) or "") for w in found]

    @get(
        "/{worker_id:uuid}",
        guards=[requires_roles(*READERS)],
        summary="One social worker: now (its read model), or as of a date (its events)",
    )
    async def get_worker(
        self,
        tenant: FromPath[str],
        worker_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        past: NamedDependency[PastRecords],
        as_of: AsOf = None,
    ) -> Response[WorkerView | RecordAsOf]:
        if as_of is not None:
            return await past.read(tenant, actor_scope, "SocialWorker", worker_id, as_of)
        return await read_one(db, tenant, actor_scope, workers.get_worker, worker_id, what="worker")
