"""`GET /v1/tenants/{t}/<resource>/{id}/history` for every aggregate a service declares a
resource for: the kernel's routes, no per-service code."""

from __future__ import annotations

from uuid import UUID

from litestar import get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, SkipValidation

from shared.audit.history import RecordHistory, history_of
from shared.db.pool import tenant_transaction
from shared.domain.errors import NotFound
from shared.domain.messages import Message, record_name
from shared.domain.organisation import Scope
from shared.http.access import shown
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.resilience.faults import CONNECTION_WAIT_SECONDS
from shared.runtime import ServiceRuntime
from shared.service import ServiceDefinition

Runtime = SkipValidation[ServiceRuntime]


def history_routes(definition: ServiceDefinition) -> list[HTTPRouteHandler]:
    return [_route(aggregate, resource) for aggregate, resource in definition.resources.items()]


def _route(aggregate: str, resource: str) -> HTTPRouteHandler:
    what = aggregate[0].lower() + "".join(
        f" {c.lower()}" if c.isupper() else c for c in aggregate[1:]
    )

    async def history(
        tenant: FromPath[str],
        record_id: FromPath[UUID],
        runtime: Runtime,
        actor_scope: NamedDependency[Scope],
    ) -> RecordHistory:
        async with tenant_transaction(runtime.db, tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
            found = await history_of(conn, runtime.logs, tenant, record_id, runtime.keys)
        # Outside the caller's scope is the same answer as no such record, as for reads.
        if (
            found is None
            or found.record.aggregate != aggregate
            or not actor_scope.covers(found.aggregate.scope)
        ):
            raise NotFound(Message("{record} not found", record=record_name(what, record_id)))
        # A restricted record's history shows what the record shows.
        shown(found.aggregate)
        return found.record

    return get(
        f"/v1/tenants/{{tenant:str}}/{resource}/{{record_id:uuid}}/history",
        guards=[tenant_guard, requires_roles(*READERS)],
        tags=[resource],
        summary=f"History of one {aggregate}: every change, who, when, why, before and after",
        operation_id=f"{resource}_history",
        name=f"{resource}-history",
    )(history)
