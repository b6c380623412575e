"""An institution's profile: update and read."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from services.registry.application.update_institution_profile import UpdateInstitutionProfile
from services.registry.projections import profiles
from services.registry.projections.profiles import ProfileView
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.commands import expose
from shared.http.reads import read_one
from shared.http.security import READERS, requires_roles, tenant_guard

# An institution's own staff keep its profile up to date (their token's scope is the
# institution: the unit of work refuses any other).
PROFILE_WRITERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR, Role.INSTITUTION_STAFF)


class ProfileController(Controller):
    path = "/v1/tenants/{tenant:str}/institutions"
    guards = [tenant_guard]
    tags = ["institutions"]

    update = expose(
        UpdateInstitutionProfile, "/{institution_id:uuid}/profile", guards=[PROFILE_WRITERS]
    )

    @get(
        "/{institution_id:uuid}/profile",
        guards=[requires_roles(*READERS)],
        summary="An institution's profile",
    )
    async def get_profile(
        self,
        tenant: FromPath[str],
        institution_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[ProfileView]:
        return await read_one(
            db, tenant, actor_scope, profiles.get_profile, institution_id, what="institution"
        )
