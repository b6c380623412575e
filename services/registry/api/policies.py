"""Policies: propose, decide (approve, reject, ask for a revision), revise, read (a
council's approval inbox is read under its unit: `GET …/units/{unit_id}/inbox`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from services.registry.application.approve_policy import ApprovePolicy
from services.registry.application.propose_policy import ProposePolicy
from services.registry.application.reject_policy import RejectPolicy
from services.registry.application.request_policy_revision import RequestPolicyRevision
from services.registry.application.revise_policy import RevisePolicy
from services.registry.domain.policy import PolicyLevel, PolicyStatus
from services.registry.projections import policies
from services.registry.projections.policies import PolicyView
from shared.auth import Role
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.commands import expose
from shared.http.params import Offset
from shared.http.reads import read_many, read_one
from shared.http.security import READERS, requires_roles, tenant_guard

# Institution staff propose and revise their institution's policies (their token's scope);
# councils' decisions are taken by the province or the PDM's operators.
PROPOSERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR, Role.INSTITUTION_STAFF)
DECIDERS = requires_roles(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR)
_CODE = r"^\d{4}(\d{2})?$"


class PolicyController(Controller):
    path = "/v1/tenants/{tenant:str}/policies"
    guards = [tenant_guard]
    tags = ["policies"]

    propose = expose(ProposePolicy, "/", guards=[PROPOSERS], status_code=201)
    approve = expose(ApprovePolicy, "/{policy_id:uuid}/approve", guards=[DECIDERS])
    reject = expose(RejectPolicy, "/{policy_id:uuid}/reject", guards=[DECIDERS])
    request_revision = expose(
        RequestPolicyRevision, "/{policy_id:uuid}/request-revision", guards=[DECIDERS]
    )
    revise = expose(RevisePolicy, "/{policy_id:uuid}/revise", guards=[PROPOSERS])

    @get("/", guards=[requires_roles(*READERS)], summary="List policies, newest first")
    async def list_policies(
        self,
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
        status: FromQuery[PolicyStatus | None] = None,
        level: FromQuery[PolicyLevel | None] = None,
        institution_id: FromQuery[UUID | None] = None,
        approver: Annotated[str | None, Parameter(pattern=_CODE)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> list[PolicyView]:
        return await read_many(
            db,
            tenant,
            actor_scope,
            policies.list_policies,
            status=status,
            level=level,
            institution_id=institution_id,
            approver=approver,
            limit=limit,
            offset=offset,
        )

    @get("/{policy_id:uuid}", guards=[requires_roles(*READERS)], summary="One policy")
    async def get_policy(
        self,
        tenant: FromPath[str],
        policy_id: FromPath[UUID],
        db: NamedDependency[DbPool],
        actor_scope: NamedDependency[Scope],
    ) -> Response[PolicyView]:
        return await read_one(
            db, tenant, actor_scope, policies.get_policy, policy_id, what="policy"
        )
