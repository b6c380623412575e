"""Institutions: register, read, rename, suspend, reinstate, close."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from services.registry.application.close_institution import CloseInstitution
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.reinstate_institution import ReinstateInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.application.suspend_institution import SuspendInstitution
from services.registry.projections import institutions
from services.registry.projections.institutions import InstitutionFilters, InstitutionView
from shared.audit.as_of import RecordAsOf
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.labels import Label
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, PastRecords, day_of, moment
from shared.http.commands import expose
from shared.http.downloads import Column, Table, download_routes
from shared.http.params import Offset
from shared.http.public import TOTAL_COUNT, TOTAL_COUNT_HEADER
from shared.http.reads import read_one, read_page
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.projections.listing import filter_parameters
from shared.runtime import ServiceRuntime

WRITERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
GOVERNORS = requires_roles(Role.WILAYAH_ADMIN)


class InstitutionController(Controller):
    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["institutions"]
    dependencies = {"filters": filter_parameters(InstitutionFilters)}

    register = expose(RegisterInstitution, "/", guards=[WRITERS], status_code=201)
    rename = expose(RenameInstitution, "/{institution_id:uuid}/rename", guards=[WRITERS])
    suspend = expose(SuspendInstitution, "/{institution_id:uuid}/suspend", guards=[GOVERNORS])
    reinstate = expose(ReinstateInstitution, "/{institution_id:uuid}/reinstate", guards=[GOVERNORS])
    close = expose(CloseInstitution, "/{institution_id:uuid}/close", guards=[GOVERNORS])

    @get(
        "/",
        guards=[requires_roles(*READERS)],
        summary="List institutions, now or as of a date; search by name and address",
        response_headers=[TOTAL_COUNT],
    )
    async def list_institutions(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        runtime: NamedDependency[ServiceRuntime],
        filters: NamedDependency[InstitutionFilters],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
        as_of: AsOf = None,
    ) -> Response[list[InstitutionView]]:
        when = moment(as_of)
        page = await read_page(
            db,
            tenant,
            actor_scope,
            institutions.list_institutions,
            filters,
            limit=limit,
            offset=offset,
            day=day_of(tenant, runtime.clock, when),
            reader=actor_scope,
            as_of=when,
        )
        return Response(page.items, headers={TOTAL_COUNT_HEADER: str(page.total)})

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
        runtime: NamedDependency[ServiceRuntime],
        past: NamedDependency[PastRecords],
        as_of: AsOf = None,
    ) -> Response[InstitutionView | RecordAsOf]:
        if as_of is not None:
            return await past.read(tenant, actor_scope, "Institution", institution_id, as_of)
        today = runtime.clock.today(tenant)
        return await read_one(
            db,
            tenant,
            actor_scope,
            lambda conn, record_id: institutions.get_institution(conn, record_id, day=today),
            institution_id,
            what="institution",
        )


# The directory as a spreadsheet: the list's columns, headers in the reader's language.
DIRECTORY_TABLE = Table(
    InstitutionView,
    [
        Column("id", Label("ID", "ID")),
        Column("name", Label("Nama", "Name")),
        Column("kind", Label("Jenis", "Type")),
        Column("owner", Label("Pemilik", "Owner")),
        Column("pdm", Label("PDM", "PDM")),
        Column("address", Label("Alamat", "Address")),
        Column("unit", Label("Cabang", "Branch")),
        Column("status", Label("Status", "Status")),
        Column("grade", Label("Akreditasi", "Accreditation")),
        Column("accredited_until", Label("Akreditasi berlaku sampai", "Accredited until")),
        Column("licence", Label("Izin operasional", "Operating licence")),
        Column("licence_valid_until", Label("Izin berlaku sampai", "Licence valid until")),
        Column("registered_at", Label("Terdaftar", "Registered")),
        Column("updated_at", Label("Diperbarui", "Updated")),
    ],
)


class InstitutionDownloadController(Controller):
    path = "/v1/tenants/{tenant:str}"
    guards = [tenant_guard]
    tags = ["institutions"]

    institutions_csv, institutions_xlsx = download_routes(
        "/institutions",
        filters=InstitutionFilters,
        rows=institutions.INSTITUTIONS.rows,
        table=DIRECTORY_TABLE,
        name=Label("lembaga", "institutions"),
        what="The institutions list",
        operation="institutions",
    )
