"""Accreditation: record the board's decisions and revocations; the register with its
counts per grade, of a province and across provinces."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.application.revoke_accreditation import RevokeAccreditation
from services.registry.domain.accreditation import AccreditationStatus, Grade
from services.registry.domain.institution import InstitutionType
from services.registry.projections import accreditation
from services.registry.projections.accreditation import AccreditationView, GradeCounts
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, moment
from shared.http.commands import expose
from shared.http.national import read_each_tenant
from shared.http.params import Offset
from shared.http.reads import read_many, read_one, scoped_transaction
from shared.http.security import READERS, national_guard, requires_roles, tenant_guard
from shared.runtime import ServiceRuntime

# The PDM records its institutions' decisions, as it registers them; the province too.
RECORDERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
NATIONAL_READERS = requires_roles(Role.NATIONAL_ADMIN, Role.AUDITOR)
ExpiringWithin = Annotated[
    int | None,
    Parameter(
        ge=0,
        le=3660,
        description="only accreditations in force that end within this many days from today",
    ),
]
Kind = Annotated[
    InstitutionType | None, Parameter(description="only institutions of this type, e.g. lksa")
]


class ProvinceCounts(msgspec.Struct):
    tenant: str
    counts: GradeCounts


class NationalCounts(msgspec.Struct):
    """Counts per province (every province, zeros included) and their sum."""

    national: GradeCounts
    provinces: list[ProvinceCounts]


class AccreditationController(Controller):
    path = "/v1/tenants/{tenant:str}"
    guards = [tenant_guard]
    tags = ["accreditation"]

    record = expose(
        RecordAccreditation,
        "/institutions/{institution_id:uuid}/accreditation",
        guards=[RECORDERS],
        status_code=201,
    )
    revoke = expose(
        RevokeAccreditation,
        "/institutions/{institution_id:uuid}/accreditation/revoke",
        guards=[RECORDERS],
    )

    @get(
        "/institutions/{institution_id:uuid}/accreditation",
        guards=[requires_roles(*READERS)],
        summary="An institution's accreditation now",
    )
    async def get_accreditation(
        self,
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[AccreditationView]:
        return await read_one(
            db,
            tenant,
            actor_scope,
            accreditation.accreditation_of,
            institution_id,
            what="accreditation of institution",
        )

    @get(
        "/accreditations",
        guards=[requires_roles(*READERS)],
        summary="The accreditation register, now or as of a date",
    )
    async def list_accreditations(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        runtime: NamedDependency[ServiceRuntime],
        status: FromQuery[AccreditationStatus | None] = None,
        grade: FromQuery[Grade | None] = None,
        kind: Kind = None,
        pdm: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None,
        expiring_within: ExpiringWithin = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        as_of: AsOf = None,
    ) -> list[AccreditationView]:
        valid_until_by = None
        if expiring_within is not None:
            status = AccreditationStatus.ACCREDITED
            valid_until_by = runtime.clock.today() + timedelta(days=expiring_within)
        return await read_many(
            db,
            tenant,
            actor_scope,
            accreditation.list_accreditations,
            status=status,
            grade=grade,
            pdm=pdm,
            kind=kind,
            valid_until_by=valid_until_by,
            limit=limit,
            offset=offset,
            as_of=moment(as_of),
        )

    @get(
        "/accreditations/counts",
        guards=[requires_roles(*READERS)],
        summary="Institutions per accreditation grade in the province (or the caller's PDM)",
    )
    async def count_accreditations(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        kind: Kind = None,
    ) -> GradeCounts:
        async with scoped_transaction(db, tenant, actor_scope) as conn:
            return await accreditation.grade_counts(conn, kind=kind)


class NationalAccreditationController(Controller):
    path = "/v1/national/accreditations"
    guards = [national_guard, NATIONAL_READERS]
    tags = ["accreditation"]

    @get("/counts", summary="Institutions per accreditation grade, per province and nationally")
    async def national_counts(
        self, db: NamedDependency[DbPool], kind: Kind = None
    ) -> NationalCounts:
        per_province = await read_each_tenant(db, accreditation.grade_counts, kind=kind)
        national = GradeCounts()
        for counts in per_province.values():
            national.add(counts)
        return NationalCounts(
            national=national,
            provinces=[ProvinceCounts(t, c) for t, c in per_province.items()],
        )
