"""Institutions: register, read, rename, suspend, reinstate."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from services.registry.api.schemas import (
    GovernanceChange,
    RegisterInstitution,
    RenameInstitution,
)
from services.registry.application.register_institution import register_institution
from services.registry.application.reinstate_institution import reinstate_institution
from services.registry.application.rename_institution import rename_institution
from services.registry.application.suspend_institution import suspend_institution
from services.registry.domain.institution import InstitutionStatus, InstitutionType
from services.registry.projections import institutions
from services.registry.projections.institutions import InstitutionView
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.eventstore.commands import CommandRunner
from shared.http.commands import CommandAccepted, execute, expected_version
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard

WRITERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
GOVERNORS = requires_roles(Role.WILAYAH_ADMIN)


class InstitutionController(Controller):
    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["institutions"]

    @post("/", guards=[WRITERS], summary="Register an institution (AUMSos)")
    async def register(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        data: JSONBody[RegisterInstitution],
        commands: NamedDependency[CommandRunner],
    ) -> Response[CommandAccepted]:
        return await execute(
            request,
            commands,
            tenant,
            lambda app: register_institution(
                app,
                name=data.name,
                kind=data.kind,
                owner=data.owner,
                pdm=data.pdm,
                address=data.address,
            ),
            CommandAccepted,
            payload=data,
        )

    @get("/", guards=[requires_roles(*READERS)], summary="List institutions")
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
        )

    @get("/{institution_id:uuid}", guards=[requires_roles(*READERS)], summary="One institution")
    async def get_institution(
        self,
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[InstitutionView]:
        return await read_one(
            db,
            tenant,
            actor_scope,
            institutions.get_institution,
            institution_id,
            what="institution",
        )

    @post(
        "/{institution_id:uuid}/rename",
        guards=[WRITERS],
        status_code=200,
        summary="Rename (send If-Match with the version you read)",
    )
    async def rename(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        data: JSONBody[RenameInstitution],
        commands: NamedDependency[CommandRunner],
    ) -> Response[CommandAccepted]:
        version = expected_version(request)
        return await execute(
            request,
            commands,
            tenant,
            lambda app: rename_institution(
                app, institution_id, name=data.name, expected_version=version
            ),
            CommandAccepted,
            payload=data,
        )

    @post(
        "/{institution_id:uuid}/suspend",
        guards=[GOVERNORS],
        status_code=200,
        summary="Suspend an institution, with the reason",
    )
    async def suspend(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        data: JSONBody[GovernanceChange],
        commands: NamedDependency[CommandRunner],
    ) -> Response[CommandAccepted]:
        version = expected_version(request)
        return await execute(
            request,
            commands,
            tenant,
            lambda app: suspend_institution(app, institution_id, expected_version=version),
            CommandAccepted,
            payload=data,
            reason=data.reason,
        )

    @post(
        "/{institution_id:uuid}/reinstate",
        guards=[GOVERNORS],
        status_code=200,
        summary="Reinstate a suspended institution, with the reason",
    )
    async def reinstate(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        data: JSONBody[GovernanceChange],
        commands: NamedDependency[CommandRunner],
    ) -> Response[CommandAccepted]:
        version = expected_version(request)
        return await execute(
            request,
            commands,
            tenant,
            lambda app: reinstate_institution(app, institution_id, expected_version=version),
            CommandAccepted,
            payload=data,
            reason=data.reason,
        )
