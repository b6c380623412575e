"""Complaint centre: receive and read complaints; the directory of known institutions."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from services.cases.api.schemas import ComplaintView, DirectoryEntry, ReceiveComplaint
from services.cases.application.receive_complaint import receive_complaint
from services.cases.domain.complaint import KnownInstitution
from shared.auth import Role
from shared.db.pool import DbPool, tenant_transaction
from shared.domain.organisation import Scope
from shared.eventstore.commands import CommandRunner
from shared.http.commands import CommandAccepted, execute
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard

_COLUMNS = (
    "id, channel, summary, concerns_child, institution_id, pdm, version, received_at, received_by"
)
CASE_STAFF = (Role.CASE_WORKER, Role.WILAYAH_ADMIN, Role.INSTITUTION_STAFF, Role.PDM_OPERATOR)


class ComplaintController(Controller):
    path = "/v1/tenants/{tenant:str}/complaints"
    guards = [tenant_guard]
    tags = ["complaints"]

    @post("/", guards=[requires_roles(*CASE_STAFF)], summary="Receive a complaint")
    async def receive(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        data: JSONBody[ReceiveComplaint],
        commands: NamedDependency[CommandRunner],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[CommandAccepted]:
        known = None
        if data.institution_id is not None:
            # The whole directory, not the caller's part of it: an institution outside the
            # caller's scope is refused as such (403), not reported as unknown.
            async with tenant_transaction(db, tenant) as conn:
                row = await conn.fetchrow(
                    """SELECT institution_id, name, status, pdm FROM cases.institution_directory
                       WHERE institution_id = $1""",
                    data.institution_id,
                )
            if row is not None:
                known = KnownInstitution(
                    row["institution_id"], row["name"], row["status"], row["pdm"]
                )
        return await execute(
            request,
            commands,
            tenant,
            lambda app: receive_complaint(
                app,
                channel=data.channel,
                summary=data.summary,
                concerns_child=data.concerns_child,
                institution_id=data.institution_id,
                institution=known,
                received_in=actor_scope,
            ),
            CommandAccepted,
            payload=data,
        )

    @get(
        "/",
        guards=[requires_roles(*CASE_STAFF, Role.AUDITOR, Role.NATIONAL_ADMIN)],
        summary="List complaints",
    )
    async def list_complaints(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> list[ComplaintView]:
        return await read_many(
            db,
            tenant,
            actor_scope,
            ComplaintView,
            f"""SELECT {_COLUMNS} FROM cases.complaints
                ORDER BY received_at DESC, id LIMIT $1 OFFSET $2""",
            limit,
            offset,
        )

    @get(
        "/{complaint_id:uuid}",
        guards=[requires_roles(*CASE_STAFF, Role.AUDITOR, Role.NATIONAL_ADMIN)],
        summary="One complaint",
    )
    async def get_complaint(
        self,
        tenant: FromPath[str],
        complaint_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[ComplaintView]:
        return await read_one(
            db,
            tenant,
            actor_scope,
            ComplaintView,
            f"SELECT {_COLUMNS} FROM cases.complaints WHERE id = $1",
            complaint_id,
            what="complaint",
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
        return await read_many(
            db,
            tenant,
            actor_scope,
            DirectoryEntry,
            """SELECT institution_id, name, kind, status, pdm FROM cases.institution_directory
               ORDER BY name, institution_id""",
        )
