"""Accreditation: record the board's decisions and revocations; the register with its
counts per grade, of a province and across provinces."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.application.revoke_accreditation import RevokeAccreditation
from services.registry.domain.institution import InstitutionType
from services.registry.projections import accreditation, institutions
from services.registry.projections.accreditation import AccreditationView, RegisterFilters
from services.registry.projections.institutions import GradeCounts
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.labels import Label
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, day_of, moment
from shared.http.commands import expose
from shared.http.downloads import Column, Table, download_routes
from shared.http.national import read_each_tenant
from shared.http.params import Offset
from shared.http.reads import read_many, read_one, scoped_transaction
from shared.http.security import READERS, national_guard, requires_roles, tenant_guard
from shared.projections.listing import filter_parameters
from shared.runtime import ServiceRuntime

# The PDM records its institutions' decisions, as it registers them; the province too.
RECORDERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
NATIONAL_READERS = requires_roles(Role.NATIONAL_ADMIN, Role.AUDITOR)
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


# The register as a spreadsheet: its columns, headers in the reader's language.
REGISTER_TABLE = Table(
    AccreditationView,
    [
        Column("institution_id", Label("ID lembaga", "Institution ID")),
        Column("institution_name", Label("Lembaga", "Institution")),
        Column("kind", Label("Jenis", "Type")),
        Column("pdm", Label("PDM", "PDM")),
        Column("status", Label("Status", "Status")),
        Column("grade", Label("Peringkat", "Grade")),
        Column("programme", Label("Program", "Programme")),
        Column("human_resources", Label("Sumber daya manusia", "Human resources")),
        Column("management", Label("Manajemen dan organisasi", "Management & organisation")),
        Column("facilities", Label("Sarana dan prasarana", "Facilities")),
        Column("service_results", Label("Hasil pelayanan", "Service results")),
        Column("decided_on", Label("Tanggal keputusan", "Decided on")),
        Column("certificate_number", Label("Nomor sertifikat", "Certificate number")),
        Column("regulation", Label("Dasar hukum", "Regulation")),
        Column("valid_until", Label("Berlaku sampai", "Valid until")),
    ],
)


class AccreditationController(Controller):
    path = "/v1/tenants/{tenant:str}"
    guards = [tenant_guard]
    tags = ["accreditation"]
    dependencies = {"filters": filter_parameters(RegisterFilters)}

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
        filters: NamedDependency[RegisterFilters],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        as_of: AsOf = None,
    ) -> list[AccreditationView]:
        when = moment(as_of)
        return await read_many(
            db,
            tenant,
            actor_scope,
            accreditation.list_accreditations,
            filters,
            day=day_of(tenant, runtime.clock, when),
            limit=limit,
            offset=offset,
            as_of=when,
        )

    register_csv, register_xlsx = download_routes(
        "/accreditations",
        filters=RegisterFilters,
        rows=accreditation.register_rows,
        table=REGISTER_TABLE,
        name=Label("register-akreditasi", "accreditation-register"),
        what="The accreditation register",
        operation="register",
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
            return await institutions.grade_counts(conn, kind=kind)


class NationalAccreditationController(Controller):
    path = "/v1/national/accreditations"
    guards = [national_guard, NATIONAL_READERS]
    tags = ["accreditation"]

    @get("/counts", summary="Institutions per accreditation grade, per province and nationally")
    async def national_counts(
        self, db: NamedDependency[DbPool], kind: Kind = None
    ) -> NationalCounts:
        per_province = await read_each_tenant(db, institutions.grade_counts, kind=kind)
        national = GradeCounts()
        for counts in per_province.values():
            national.add(counts)
        return NationalCounts(
            national=national,
            provinces=[ProvinceCounts(t, c) for t, c in per_province.items()],
        )
