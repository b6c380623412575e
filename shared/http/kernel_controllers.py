"""Routes every service has: health, metrics, its events feed, its event catalogue and its
access log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, Parameter, SkipValidation
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.audit.access import ACCESS, AccessEntry, AccessLog
from shared.auth import SUB_MAX_LENGTH, Role
from shared.domain.errors import InvalidInput
from shared.domain.messages import Message
from shared.domain.organisation import Scope
from shared.eventstore.catalogue import EventSpec
from shared.http.access import shows_only_the_trace
from shared.http.chain import ChainController
from shared.http.export import ExportController
from shared.http.params import Position
from shared.http.reads import read_many
from shared.http.security import READERS, national_guard, requires_roles, tenant_guard
from shared.messaging.feed import FeedPage, LogHeads
from shared.resilience.faults import CONNECTION_WAIT_SECONDS, RETRY_AFTER_SECONDS
from shared.runtime import Readiness, ServiceRuntime

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
        summary="Can serve: 200 ready or degraded (with what is degraded), 503 not ready",
        description=(
            "Commands and reads need only PostgreSQL: without it the answer is 503 "
            "(`not ready`, with Retry-After). Without NATS, with a background task waiting or "
            "restarting, or with a follower stalled at an event, the service still takes "
            "traffic (`status: degraded`) and says what and why."
        ),
        responses={
            503: ResponseSpec(
                data_container=Readiness,
                description="Not ready: PostgreSQL is unreachable",
                generate_examples=False,
            )
        },
    )
    async def ready(self, runtime: Runtime) -> Response[Readiness]:
        readiness = await runtime.ready()
        if readiness.status == "not ready":
            return Response(
                readiness,
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return Response(readiness)


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
    guards = [
        tenant_guard,
        requires_roles(Role.AUDITOR, Role.NATIONAL_ADMIN, Role.WILAYAH_ADMIN, Role.SERVICE),
    ]
    tags = ["events"]

    @get("/", summary="Events of a tenant after a position")
    async def feed(
        self,
        tenant: FromPath[str],
        runtime: Runtime,
        after: Position = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> FeedPage:
        async with runtime.db.acquire(timeout=CONNECTION_WAIT_SECONDS) as conn:
            events = await runtime.logs.read(conn, tenant, after=after, limit=limit)
            head = await runtime.logs.head(conn, tenant)
        if all(e.aggregate == ACCESS for e in events):
            shows_only_the_trace()
        return FeedPage(tenant=tenant, after=after, head=head, events=events)


class LogHeadsController(Controller):
    path = "/v1/events/heads"
    guards = [national_guard, requires_roles(Role.AUDITOR, Role.NATIONAL_ADMIN, Role.SERVICE)]
    tags = ["events"]

    @get("/", summary="The last position of every tenant log (national readers)")
    async def heads(self, runtime: Runtime) -> LogHeads:
        async with runtime.db.acquire() as conn:
            return LogHeads(heads=await runtime.logs.heads(conn))


class CatalogueController(Controller):
    path = "/v1/catalogue/events"
    guards = [requires_roles(*READERS)]
    tags = ["events"]

    @get("/", summary="Every event this service publishes: name, version, fields")
    async def catalogue(self, runtime: Runtime) -> list[EventSpec]:
        return runtime.catalogue.specs()


# An RFC 3339 date-time with its offset. Not a `datetime` parameter: Litestar would also
# take a bare number (seconds since the epoch), which the document cannot say.
_INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


def _instant(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        # The shape is right (the pattern), the date is not: 2026-02-30, 25:00.
        raise InvalidInput(
            Message("{value!r} is not a date and time", value=value), field=name, source="query"
        ) from None


class AccessLogController(Controller):
    """The tenant's access log (`shared.http.access`), for auditors only: who looked at
    what, restricted records included, is for oversight. Its entries are also events of
    the tenant's log (`Access.Recorded`): in the events feed and the export."""

    path = "/v1/tenants/{tenant:str}/access-log"
    guards = [tenant_guard, requires_roles(Role.AUDITOR)]
    tags = ["audit"]

    @get(
        "/",
        summary="Who read what of this tenant, when and why (auditors)",
        description=(
            "Every read by an auditor and every read that showed a restricted record (a "
            "complaint concerning a child), oldest first. Page with `after` (the last "
            "entry's `position`). Reading it shows no record of the tenant and is not "
            "itself recorded (else paging to its end would never end)."
        ),
    )
    async def access_log(
        self,
        tenant: FromPath[str],
        runtime: Runtime,
        actor_scope: NamedDependency[Scope],
        after: Position = 0,
        actor: Annotated[
            str | None,
            Parameter(min_length=1, max_length=SUB_MAX_LENGTH, description="only this reader"),
        ] = None,
        since: Annotated[
            str | None, Parameter(pattern=_INSTANT, description="entries at or after (RFC 3339)")
        ] = None,
        until: Annotated[
            str | None, Parameter(pattern=_INSTANT, description="entries before (RFC 3339)")
        ] = None,
        record_id: Annotated[
            UUID | None, Parameter(description="only entries that read this record")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> list[AccessEntry]:
        shows_only_the_trace()
        return await read_many(
            runtime.db,
            tenant,
            actor_scope,
            AccessLog(runtime.name).entries,
            after=after,
            actor=actor,
            since=_instant(since, "since"),
            until=_instant(until, "until"),
            record_id=record_id,
            limit=limit,
        )


# What every process of a service answers, a worker's included: probes and scrapes.
OPERATIONS_CONTROLLERS = [HealthController, MetricsController]
KERNEL_CONTROLLERS = [
    *OPERATIONS_CONTROLLERS,
    EventsController,
    ExportController,
    LogHeadsController,
    CatalogueController,
    ChainController,
    AccessLogController,
]

__all__ = ["KERNEL_CONTROLLERS", "OPERATIONS_CONTROLLERS"]
