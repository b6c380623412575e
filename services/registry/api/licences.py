"""Licences: record, renew and revoke an institution's registration letter and operating
licence; list them, those expiring soon and those expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from services.registry.application.record_licence import RecordLicence
from services.registry.application.renew_licence import RenewLicence
from services.registry.application.revoke_licence import RevokeLicence
from services.registry.domain.licence import LicenceKind, LicenceStatus
from services.registry.projections import licences
from services.registry.projections.licences import LicenceView
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, day_of, moment
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.runtime import ServiceRuntime

RECORDERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)


class LicenceController(Controller):
    path = "/v1/tenants/{tenant:str}"
    guards = [tenant_guard]
    tags = ["licences"]

    record = expose(
        RecordLicence,
        "/institutions/{institution_id:uuid}/licences",
        guards=[RECORDERS],
        status_code=201,
    )
    renew = expose(
        RenewLicence,
        "/licences/{licence_id:uuid}/renew",
        guards=[RECORDERS],
    )
    revoke = expose(
        RevokeLicence,
        "/licences/{licence_id:uuid}/revoke",
        guards=[RECORDERS],
    )

    @get(
        "/licences",
        guards=[requires_roles(*READERS)],
        summary="Licences, now or as of a date; those expiring within N days, or expired",
    )
    async def list_licences(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        runtime: NamedDependency[ServiceRuntime],
        kind: FromQuery[LicenceKind | None] = None,
        status: FromQuery[LicenceStatus | None] = None,
        pdm: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None,
        institution_id: FromQuery[UUID | None] = None,
        expiring_within: Annotated[
            int | None,
            Parameter(
                ge=0,
                le=3660,
                description="only valid licences ending within N days from today (or from "
                "the day of `as_of`), in the province",
            ),
        ] = None,
        expired: Annotated[
            bool,
            Parameter(
                description="only licences whose end date had passed by today (or by the "
                "day of `as_of`), in the province"
            ),
        ] = False,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        as_of: AsOf = None,
    ) -> list[LicenceView]:
        when = moment(as_of)
        # A list as of a moment counts its days from that moment's day, not from today.
        day = day_of(tenant, runtime.clock, when)
        valid_from = valid_by = None
        if expiring_within is not None:
            status = LicenceStatus.VALID
            valid_from, valid_by = day, day + timedelta(days=expiring_within)
        if expired:
            valid_by = day - timedelta(days=1)
        return await read_many(
            db,
            tenant,
            actor_scope,
            licences.list_licences,
            kind=kind,
            status=status,
            pdm=pdm,
            institution_id=institution_id,
            valid_from=valid_from,
            valid_by=valid_by,
            limit=limit,
            offset=offset,
            as_of=when,
        )
