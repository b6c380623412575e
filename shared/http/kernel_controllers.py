"""Routes every service has: health, metrics, its events feed and its event catalogue."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import FromPath, Parameter, SkipValidation
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.auth import Role
from shared.availability import CONNECTION_WAIT_SECONDS, RETRY_AFTER_SECONDS
from shared.eventstore.catalogue import EventSpec
from shared.http.security import READERS, requires_roles, tenant_guard
from shared.messaging.feed import FeedPage
from shared.runtime import ServiceRuntime

# The runtime is our own object, not input: Litestar must not try to validate (convert) it,
# which fails on annotations that are generic only in stubs (asyncpg.Pool[Any]).
Runtime = SkipValidation[ServiceRuntime]


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]

    @get("/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "live"}

    @get(
        "/ready",
        summary="Ready when PostgreSQL is reachable (503 otherwise); degraded without NATS",
        description=(
            "Commands and reads need only PostgreSQL. Without NATS the service still takes "
            "traffic (`status: degraded`): events wait in the log and the relay publishes "
            "them when NATS is back."
        ),
    )
    async def ready(self, runtime: Runtime) -> Response[dict[str, object]]:
        checks = await runtime.ready()
        if not checks["postgres"]:
            status, code = "not ready", 503
        elif not all(checks.values()):
            status, code = "degraded", 200
        else:
            status, code = "ready", 200
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if code == 503 else None
        return Response({"status": status, "checks": checks}, status_code=code, headers=headers)


class MetricsController(Controller):
    path = "/metrics"
    tags = ["operations"]

    @get("/", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(self, runtime: Runtime) -> Response[bytes]:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class EventsController(Controller):
    """The tenant's event log in order: what auditors replay, other systems follow and
    consumers use to refill a hole left by NATS."""

    path = "/v1/tenants/{tenant:str}/events"
    guards = [tenant_guard, requires_roles(Role.AUDITOR, Role.NATIONAL_ADMIN, Role.WILAYAH_ADMIN)]
    tags = ["events"]

    @get("/", summary="Events of a tenant after a position")
    async def feed(
        self,
        tenant: FromPath[str],
        runtime: Runtime,
        after: Annotated[int, Parameter(ge=0, description="return events after this position")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> FeedPage:
        async with runtime.db.acquire(timeout=CONNECTION_WAIT_SECONDS) as conn:
            events = await runtime.logs.read(conn, tenant, after=after, limit=limit)
            head = await runtime.logs.head(conn, tenant)
        return FeedPage(tenant=tenant, after=after, head=head, events=events)


class CatalogueController(Controller):
    path = "/v1/catalogue/events"
    guards = [requires_roles(*READERS)]
    tags = ["events"]

    @get("/", summary="Every event this service publishes: name, version, fields")
    async def catalogue(self, runtime: Runtime) -> list[EventSpec]:
        return runtime.catalogue.specs()


KERNEL_CONTROLLERS = [HealthController, MetricsController, EventsController, CatalogueController]

__all__ = ["KERNEL_CONTROLLERS"]
