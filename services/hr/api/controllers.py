"""Social workers: register and read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from services.hr.api.schemas import RegisterWorker
from services.hr.application.register_worker import register_worker
from services.hr.projections import workers
from services.hr.projections.workers import WorkerView
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.eventstore.commands import CommandRunner
from shared.http.commands import CommandAccepted, execute
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard


class WorkerController(Controller):
    path = "/v1/tenants/{tenant:str}/workers"
    guards = [tenant_guard]
    tags = ["workers"]

    @post(
        "/",
        guards=[requires_roles(Role.HR_OFFICER, Role.WILAYAH_ADMIN)],
        summary="Register a social worker",
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        data: JSONBody[RegisterWorker],
        commands: NamedDependency[CommandRunner],
    ) -> Response[CommandAccepted]:
        today = datetime.now(UTC).date()
        return await execute(
            request,
            commands,
            tenant,
            lambda app: register_worker(
                app,
                full_name=data.full_name,
                birth_date=data.birth_date,
                pdm=data.pdm,
                today=today,
            ),
            CommandAccepted,
            payload=data,
        )

    @get("/", guards=[requires_roles(*READERS)], summary="List social workers")
    async def list_workers(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> list[WorkerView]:
        return await read_many(
            db, tenant, actor_scope, workers.list_workers, limit=limit, offset=offset
        )

    @get("/{worker_id:uuid}", guards=[requires_roles(*READERS)], summary="One social worker")
    async def get_worker(
        self,
        tenant: FromPath[str],
        worker_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[WorkerView]:
        return await read_one(db, tenant, actor_scope, workers.get_worker, worker_id, what="worker")
