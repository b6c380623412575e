"""Public, read-only views of a service's read models: what anyone may see without a token
(the institutions directory, for transparency), served under `/v1/public/tenants/{tenant}`.

A service declares a `PublicResource` in its `ServiceDefinition.public`: the resource name,
a `Listing` over a view that holds only public fields (the view is the allow-list: a column
it does not name is never selected), the same filters Struct as its private list, and the
query of one record. The kernel serves the list (filters, paging, `X-Total-Count`) and the
record.

- Tenancy stays in the database: the read runs in the tenant's row-level-security
  transaction with a whole-province scope, as a province-wide reader's would. An unknown
  province is a 404.
- Caching: `Cache-Control: public, max-age=60` and an ETag from the position the read
  model has applied in that tenant's log (`projection_positions`). A request whose
  `If-None-Match` holds it gets a 304 after one indexed lookup, without the list query; any
  event in the tenant moves the position (a conservative ETag, never a stale one). The
  ETag also names the representation's version (`PUBLIC_FORMAT`), so a release that
  changes the view's fields invalidates old copies.
- Rate limit: `MPKS_PUBLIC_RATE_LIMIT` requests a minute per client address (Litestar's
  `RateLimitMiddleware`, only on these routes), then 429 with `RateLimit-*` headers. The
  address is the TCP peer's: behind a reverse proxy or ingress, uvicorn must be told to
  trust it (`FORWARDED_ALLOW_IPS`, or `--forwarded-allow-ips`) so `X-Forwarded-For` gives
  the client, or every client shares the proxy's budget. The count lives in each worker
  process's memory: with `MPKS_WORKERS=N` (or N replicas) a client gets up to N times the
  limit, and a restart forgets it. It protects the database from one noisy client, not
  from a distributed crawl: that is the edge's job (ingress or CDN rate limiting).
- Reads are not access-logged: nothing here is personal or restricted, and there is no
  reader to name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import FromPath, Parameter

from shared.db.pool import DbConnection, DbPool
from shared.domain.errors import NotFound
from shared.domain.messages import Message, record_name
from shared.domain.organisation import PROVINCE
from shared.http.params import Offset
from shared.http.reads import scoped_transaction
from shared.projections.listing import Listing, filter_parameters
from shared.tenancy import province_codes

PUBLIC_PREFIX = "/v1/public/tenants/{tenant:str}"
PUBLIC_MAX_AGE_SECONDS = 60
# Bumped when a public view's fields or their meaning change: part of every ETag (2: the
# institutions' grade; 3: their valid-until only while an accreditation is in force).
PUBLIC_FORMAT = 3
TOTAL_COUNT_HEADER = "X-Total-Count"
TOTAL_COUNT = ResponseHeader(
    name=TOTAL_COUNT_HEADER,
    description="How many records the whole list holds (every page), for paging",
    documentation_only=True,
)


@dataclass(frozen=True)
class PublicResource:
    """A read model shown to anyone: `listing` over a view of public fields only."""

    resource: str
    listing: Listing[Any, Any]
    one: Callable[[DbConnection, UUID], Awaitable[msgspec.Struct | None]]
    # The record's noun in messages (`institution`) and the read model whose position in
    # the tenant's log is the ETag.
    what: str
    projection: str
    summary: str


async def public_tenant_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    tenant = connection.path_params.get("tenant")
    if tenant not in province_codes():
        raise NotFoundException(detail=Message("unknown tenant {tenant!r}", tenant=tenant))


def _etag(position: int) -> str:
    return f'"p{PUBLIC_FORMAT}-{position}"'


def _matches(request: Request[Any, Any, Any], etag: str) -> bool:
    """`If-None-Match` (RFC 9110 §13.1.2): weak comparison, a list or `*`."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _cached(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_SECONDS}"}


def public_routes(
    schema: str, resources: Sequence[PublicResource], rate_limit_per_minute: int
) -> list[Router]:
    """One router per public resource of the service whose read models are in `schema`."""
    positions_sql = (
        f"SELECT coalesce(max(position), 0) FROM {schema}.projection_positions "
        "WHERE projection = $1 AND tenant_id = $2"
    )
    return [_router(r, positions_sql, rate_limit_per_minute) for r in resources]


def _router(resource: PublicResource, positions_sql: str, rate_limit: int) -> Router:
    listing = resource.listing
    filters_type = listing.filters

    async def state(conn: DbConnection, tenant: str) -> str:
        return _etag(int(await conn.fetchval(positions_sql, resource.projection, tenant)))

    async def list_public(
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        db: NamedDependency[DbPool],
        filters: Any,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> Response[Any]:
        async with scoped_transaction(db, tenant, PROVINCE) as conn:
            etag = await state(conn, tenant)
            if _matches(request, etag):
                return Response(None, status_code=304, headers=_cached(etag))
            page = await listing.page(conn, filters, limit=limit, offset=offset)
        return Response(page.items, headers={**_cached(etag), TOTAL_COUNT_HEADER: str(page.total)})

    async def get_public(
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        record_id: FromPath[UUID],
        db: NamedDependency[DbPool],
    ) -> Response[Any]:
        async with scoped_transaction(db, tenant, PROVINCE) as conn:
            etag = await state(conn, tenant)
            if _matches(request, etag):
                return Response(None, status_code=304, headers=_cached(etag))
            record = await resource.one(conn, record_id)
        if record is None:
            raise NotFound(
                Message("{record} not found", record=record_name(resource.what, record_id))
            )
        return Response(record, headers=_cached(etag))

    # The view's type for the document (a closure's variable cannot be an annotation).
    list_public.__annotations__.update(
        filters=NamedDependency[filters_type],  # type: ignore[misc,valid-type]
        **{"return": Response[list[listing.view]]},  # type: ignore[name-defined]
    )
    get_public.__annotations__["return"] = Response[listing.view]  # type: ignore[name-defined]
    name = resource.resource
    return Router(
        path=PUBLIC_PREFIX,
        guards=[public_tenant_guard],
        tags=["public"],
        dependencies={"filters": filter_parameters(filters_type)},
        middleware=[RateLimitConfig(rate_limit=("minute", rate_limit)).middleware],
        route_handlers=[
            get(
                f"/{name}",
                summary=resource.summary,
                operation_id=f"public_{name}",
                name=f"public-{name}",
                response_headers=[TOTAL_COUNT],
                security=[],
            )(list_public),
            get(
                f"/{name}/{{record_id:uuid}}",
                summary=f"One of: {resource.summary}",
                operation_id=f"public_{name}_one",
                name=f"public-{name}-one",
                security=[],
            )(get_public),
        ],
    )
