"""Reading read models over HTTP: always inside the tenant's RLS transaction, one record
with its version as ETag (what If-Match sends back), or a list; and reading one's own writes.

Read models trail the event log by the projection's lag. Every command answers with
`Mpks-Position` (its events' position in the tenant log); a read that sends it back as
`Mpks-Min-Position` is answered only once the service's read models of that tenant have
applied that position: a client reads its own writes. The wait is bounded (3 s, or
`Prefer: wait=N` up to 10 s); past it the answer is a 503 problem with Retry-After and the
position reached so far in `Mpks-Position`, never a silently stale read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from litestar import Request, Response
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Schema,
)

from shared.availability import CONNECTION_WAIT_SECONDS
from shared.db.pool import DbPool, tenant_transaction
from shared.domain.errors import NotFound, RuleBroken
from shared.http.problems import Problem, problem_response

POSITION_HEADER = "Mpks-Position"
MIN_POSITION_HEADER = "Mpks-Min-Position"
DEFAULT_WAIT_SECONDS = 3.0
MAX_WAIT_SECONDS = 10.0
# Past the wait: what a client is asked to wait before asking again.
CATCH_UP_RETRY_AFTER_SECONDS = 1
# Positions are bigint in PostgreSQL.
_MAX_POSITION = 2**63 - 1
# RFC 7240 `Prefer: wait=N` (among other preferences, in any order).
_PREFER_WAIT = re.compile(r'(?:^|[\s,;])wait\s*=\s*"?(\d+(?:\.\d+)?)', re.IGNORECASE)


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)
T = TypeVar("T")


async def read_one(
    db: DbPool, tenant: str, view: type[V], query: str, record_id: UUID, *, what: str
) -> Response[V]:
    async with tenant_transaction(db, tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
        row = await conn.fetchrow(query, record_id)
    if row is None:
        raise NotFound(f"{what} {record_id} not found")
    record = view(**dict(row))
    return Response(record, headers={"ETag": f'"{record.version}"'})


async def read_many(db: DbPool, tenant: str, view: type[T], query: str, *args: Any) -> list[T]:
    async with tenant_transaction(db, tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
        rows = await conn.fetch(query, *args)
    return [view(**dict(r)) for r in rows]


class ReadModelPositions:
    """How far a service's read models have applied each tenant's log.

    Polls `projection_positions`, which the projection runner commits with the rows: the
    runner may be in another process or replica, so the database is the one witness.
    """

    def __init__(self, pool: DbPool, schema: str, projections: Sequence[str]) -> None:
        self.pool = pool
        self.projections = list(projections)
        # A projection without a row yet has applied nothing (position 0).
        self._reached_sql = f"""
            SELECT min(coalesce(p.position, 0)) FROM unnest($1::text[]) AS n(projection)
            LEFT JOIN {schema}.projection_positions p
              ON p.projection = n.projection AND p.tenant_id = $2"""

    async def reached(self, tenant: str) -> int:
        async with self.pool.acquire(timeout=CONNECTION_WAIT_SECONDS) as conn:
            value = await conn.fetchval(self._reached_sql, self.projections, tenant)
        return int(value)

    async def wait(self, tenant: str, position: int, within: float) -> tuple[bool, int]:
        """(True, reached) once every read model of `tenant` applied `position`, or
        (False, reached) after `within` seconds."""
        if not self.projections:
            return True, position
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pause = 0.005
        while True:
            reached = await self.reached(tenant)
            if reached >= position:
                return True, reached
            left = deadline - loop.time()
            if left <= 0:
                return False, reached
            # Usually caught up within tens of milliseconds (the runner wakes on NOTIFY);
            # a long wait polls ten times a second.
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)


def min_position(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get(MIN_POSITION_HEADER)
    if raw is None:
        return None
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or int(value) > _MAX_POSITION:
        raise RuleBroken(
            f"{MIN_POSITION_HEADER} must be a position (the {POSITION_HEADER} of a command's "
            "answer): a whole number from 0",
            field=MIN_POSITION_HEADER,
            source="header",
        )
    return int(value)


def preferred_wait(request: Request[Any, Any, Any]) -> float:
    """`Prefer: wait=N` (RFC 7240), capped; a preference is a hint, so a malformed one is
    ignored."""
    match = _PREFER_WAIT.search(request.headers.get("prefer", ""))
    if match is None:
        return DEFAULT_WAIT_SECONDS
    return min(float(match.group(1)), MAX_WAIT_SECONDS)


def read_your_writes(
    positions: Callable[[], ReadModelPositions],
) -> Callable[[Request[Any, Any, Any]], Awaitable[Response[Problem] | None]]:
    """A before-request hook for every route: a tenant read sending `Mpks-Min-Position`
    waits until the tenant's read models have reached it (after the guards: only a client
    allowed to read the tenant waits on it)."""

    async def hook(request: Request[Any, Any, Any]) -> Response[Problem] | None:
        tenant = request.path_params.get("tenant")
        if request.method not in ("GET", "HEAD") or not isinstance(tenant, str):
            return None
        position = min_position(request)
        if position is None:
            return None
        caught_up, reached = await positions().wait(tenant, position, preferred_wait(request))
        if caught_up:
            return None
        return problem_response(
            request,
            503,
            f"the read models of tenant {tenant} have applied the log up to position "
            f"{reached}, not yet {position}; retry shortly",
            headers={
                "Retry-After": str(CATCH_UP_RETRY_AFTER_SECONDS),
                POSITION_HEADER: str(reached),
            },
        )

    return hook


def document_read_your_writes(openapi: OpenAPI) -> None:
    """The headers above in the API document: the hook sits outside the routes, so Litestar
    cannot see them by itself."""
    position = Schema(type=OpenAPIType.INTEGER, minimum=0)
    for path, item in (openapi.paths or {}).items():
        if "{tenant}" not in path:
            continue
        if item.get is not None:
            item.get.parameters = [
                *(item.get.parameters or []),
                Parameter(
                    name=MIN_POSITION_HEADER,
                    param_in="header",
                    schema=position,
                    description=(
                        f"Answer only once the read models have applied this position (the "
                        f"{POSITION_HEADER} of a command's answer): reads your own writes."
                    ),
                ),
                Parameter(
                    name="Prefer",
                    param_in="header",
                    schema=Schema(type=OpenAPIType.STRING, examples=["wait=5"]),
                    description=(
                        f"`wait=S`: how long to wait for {MIN_POSITION_HEADER} (default "
                        f"{DEFAULT_WAIT_SECONDS:g} s, at most {MAX_WAIT_SECONDS:g} s)."
                    ),
                ),
            ]
            responses = item.get.responses or {}
            responses.setdefault(
                "503",
                OpenAPIResponse(
                    description=(
                        f"The read models have not reached {MIN_POSITION_HEADER} within the "
                        "wait (Retry-After), or PostgreSQL is unavailable."
                    )
                ),
            )
            item.get.responses = responses
        commands: list[Operation | None] = [item.post, item.put, item.patch, item.delete]
        for operation in commands:
            if operation is None:
                continue
            operation.responses = operation.responses or {}
            operation.responses.setdefault(
                "503",
                OpenAPIResponse(description="PostgreSQL is unavailable: retry after Retry-After."),
            )
            for status, response in operation.responses.items():
                if status.startswith("2") and isinstance(response, OpenAPIResponse):
                    response.headers = {
                        **(response.headers or {}),
                        POSITION_HEADER: OpenAPIHeader(
                            schema=position,
                            description=(
                                "Position of the command's events in the tenant's log: send "
                                f"it as {MIN_POSITION_HEADER} to read what it wrote."
                            ),
                        ),
                    }
