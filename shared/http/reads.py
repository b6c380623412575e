"""Reading read models over HTTP: always inside the tenant's RLS transaction, narrowed to the
caller's scope, one record with its version as ETag (what If-Match sends back), or a list;
and reading one's own writes.

Both note what they show (`shared.http.access.shown`): a read that shows a restricted record
is recorded in the access log before it is answered.

The scope narrows in the database: each read-model table has a row-level security policy
naming its PDM and institution columns (`actor_scope`, declared by `enable_tenant_rls` in
shared/db/sql/kernel.sql), which reads `app.scope_pdm` / `app.scope_institution`. So a list
holds only the caller's rows and a record outside its scope is simply not found, whatever
the query says.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response

from shared.db.pool import DbConnection, DbPool, tenant_transaction
from shared.domain.errors import InvalidInput, NotFound
from shared.domain.messages import Message, record_name
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.logs import TenantLogs
from shared.http.access import shown
from shared.http.params import MAX_INTEGER
from shared.http.problems import FieldError, Problem, ProblemCode, problem_response
from shared.projections.listing import Page
from shared.resilience.faults import CONNECTION_WAIT_SECONDS

POSITION_HEADER = "Mpks-Position"
MIN_POSITION_HEADER = "Mpks-Min-Position"
DEFAULT_WAIT_SECONDS = 3.0
MAX_WAIT_SECONDS = 10.0
# Past the wait: what a client is asked to wait before asking again.
CATCH_UP_RETRY_AFTER_SECONDS = 1
# RFC 7240 `Prefer: wait=N` (among other preferences, in any order).
_PREFER_WAIT = re.compile(r'(?:^|[\s,;])wait\s*=\s*"?(\d+(?:\.\d+)?)', re.IGNORECASE)


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)
T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
P = ParamSpec("P")


@asynccontextmanager
async def scoped_transaction(db: DbPool, tenant: str, scope: Scope) -> AsyncIterator[DbConnection]:
    """The tenant's transaction, seeing only the rows inside `scope`."""
    async with tenant_transaction(db, tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
        # Unset (or empty, once a transaction-local setting has ended) is the whole province,
        # as projections need it: province-wide readers skip the round trip.
        if scope != PROVINCE:
            await conn.execute(
                """SELECT set_config('app.scope_pdm', $1, true),
                          set_config('app.scope_institution', $2, true)""",
                scope.pdm or "",
                str(scope.institution or ""),
            )
        yield conn


async def read_one(
    db: DbPool,
    tenant: str,
    scope: Scope,
    query: Callable[[DbConnection, UUID], Awaitable[V | None]],
    record_id: UUID,
    *,
    what: str,
) -> Response[V]:
    """One record by a read model's named query, with its version as ETag; 404 naming it."""
    async with scoped_transaction(db, tenant, scope) as conn:
        record = await query(conn, record_id)
    if record is None:
        raise NotFound(Message("{record} not found", record=record_name(what, record_id)))
    shown(record)
    return Response(record, headers={"ETag": f'"{record.version}"'})


async def read_many(
    db: DbPool,
    tenant: str,
    scope: Scope,
    query: Callable[Concatenate[DbConnection, P], Awaitable[list[T]]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> list[T]:
    """A read model's named query, in the tenant's transaction narrowed to `scope`."""
    async with scoped_transaction(db, tenant, scope) as conn:
        records = await query(conn, *args, **kwargs)
    shown(records)
    return records


async def read_page(
    db: DbPool,
    tenant: str,
    scope: Scope,
    query: Callable[Concatenate[DbConnection, P], Awaitable[Page[S]]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Page[S]:
    """A page of a list (`shared.projections.listing`) with its total, as `read_many`."""
    async with scoped_transaction(db, tenant, scope) as conn:
        page = await query(conn, *args, **kwargs)
    shown(page.items)
    return page


class ReadModelPositions:
    """How far a service's read models have applied each tenant's log.

    Polls `projection_positions`, which the projection runner commits with the rows: the
    runner may be in another process or replica, so the database is the one witness.
    """

    def __init__(
        self, pool: DbPool, schema: str, projections: Sequence[str], logs: TenantLogs
    ) -> None:
        self.pool = pool
        self.logs = logs
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
        (False, reached) after `within` seconds; `BeyondHead` at once for a position the
        log has not reached (no command answered it: waiting cannot help)."""
        if not self.projections:
            return True, position
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pause = 0.005
        head: int | None = None
        while True:
            reached = await self.reached(tenant)
            if reached >= position:
                return True, reached
            if head is None:
                async with self.pool.acquire(timeout=CONNECTION_WAIT_SECONDS) as conn:
                    head = await self.logs.head(conn, tenant)
                if position > head:
                    raise BeyondHead(head)
            left = deadline - loop.time()
            if left <= 0:
                return False, reached
            # Usually caught up within tens of milliseconds (the runner wakes on NOTIFY);
            # a long wait polls ten times a second.
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)


class BeyondHead(Exception):
    def __init__(self, head: int) -> None:
        super().__init__(f"the log's head is {head}")
        self.head = head


def min_position(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get(MIN_POSITION_HEADER)
    if raw is None:
        return None
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or int(value) > MAX_INTEGER:
        raise InvalidInput(
            Message(
                "{header} must be a position (the {answer} of a command's answer): "
                "a whole number from 0",
                header=MIN_POSITION_HEADER,
                answer=POSITION_HEADER,
            ),
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
        try:
            caught_up, reached = await positions().wait(tenant, position, preferred_wait(request))
        except BeyondHead as beyond:
            # A precondition in a header that cannot hold (RFC 9110 412), not a wait.
            return problem_response(
                request,
                412,
                Message(
                    "{header} {position} is beyond the log of tenant {tenant} (its head is "
                    "{head}): send the {answer} a command answered",
                    header=MIN_POSITION_HEADER,
                    position=position,
                    tenant=tenant,
                    head=beyond.head,
                    answer=POSITION_HEADER,
                ),
                errors=[
                    FieldError(
                        MIN_POSITION_HEADER, Message("beyond the log's head"), source="header"
                    )
                ],
                headers={POSITION_HEADER: str(beyond.head)},
            )
        if caught_up:
            return None
        return problem_response(
            request,
            503,
            Message(
                "the read models of tenant {tenant} have applied the log up to position "
                "{reached}, not yet {position}; retry shortly",
                tenant=tenant,
                reached=reached,
                position=position,
            ),
            code=ProblemCode.READ_MODELS_BEHIND,
            headers={
                "Retry-After": str(CATCH_UP_RETRY_AFTER_SECONDS),
                POSITION_HEADER: str(reached),
            },
        )

    return hook
