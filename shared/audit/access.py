"""The access log: who read what of a tenant, when and why, for the reads that need a trace —
every read by an auditor, and every read that shows a restricted record (a complaint that
concerns a child, ...).

Each access is an event, `Access.Recorded`, appended to the log of the tenant read, by the
service that served the read, through the same command path as any other event: it is in
the tenant's events feed and export, and covered by whatever protects the log (the hash
chain). Who read and why travel as for every event, in its metadata (`actor`, `reason`);
when is the event's time. Each entry is a new `Access` record, so concurrent reads never
conflict.

Every service has this aggregate, its command and the read model over it
(`AccessLogProjection`, table `<service>.access_log`): the kernel adds them
(`shared.service.ServiceDefinition`), no service declares them.

A record is restricted when it says so: a read model's row or an aggregate with a
`restricted` property that is true (`Restrictable`). The kernel's reads
(`shared.http.reads`, the history route) hand what they show to `shared.http.access`,
which records the access before the answer leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Annotated, Any, Protocol
from uuid import UUID

import msgspec

from shared.db.pool import DbConnection
from shared.domain.aggregate import AggregateRoot, event
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork

# The aggregate's stable name in every service's catalogue (`Access.Recorded`).
ACCESS = "Access"
# What a reader may say about why it reads (`X-Access-Reason`).
REASON_MAX_LENGTH = 500


class Restrictable(Protocol):
    """A record that may be restricted (need-to-know): reading it is recorded."""

    @property
    def id(self) -> UUID: ...

    @property
    def restricted(self) -> bool: ...


def restricted_ids(records: object) -> list[UUID]:
    """The ids of the restricted records among `records` (a record, or a list of them)."""
    items: Sequence[Any] = records if isinstance(records, list | tuple) else [records]
    # getattr, not isinstance with a runtime Protocol: this runs on every row of every list.
    return [r.id for r in items if getattr(r, "restricted", False) is True]


class Access(AggregateRoot):
    """One read of a tenant's records that is kept on record."""

    class Recorded(AggregateRoot.Created):
        """Records of this tenant were read: by an auditor, or restricted ones by anyone.
        The reader is the event's actor and its stated reason the event's reason."""

        # The reader's token: its tenant (a province code, or "national") and roles.
        token_tenant: str
        roles: list[str]
        # What was read: the route (its template), the path and query string asked, the
        # resource (`complaints`), and the records named by the path or shown restricted.
        route: str
        path: str
        query: str
        resource: str
        record_ids: list[UUID]
        # Whether a restricted record was shown (not `restricted`: an entry is not itself a
        # restricted record, see `Restrictable`).
        restricted_shown: bool

    @event(Recorded)
    def __init__(
        self,
        token_tenant: str,
        roles: list[str],
        route: str,
        path: str,
        query: str,
        resource: str,
        record_ids: list[UUID],
        restricted_shown: bool,
    ) -> None:
        self.token_tenant = token_tenant
        self.roles = roles
        self.route = route
        self.path = path
        self.query = query
        self.resource = resource
        self.record_ids = record_ids
        self.restricted_shown = restricted_shown


class RecordAccess(Command, frozen=True):
    """Keep a read on record (sent by the HTTP layer, never exposed as a route)."""

    token_tenant: str
    roles: list[str]
    route: str
    path: str
    query: str
    resource: str
    record_ids: list[UUID]
    restricted_shown: bool
    reason: Annotated[str, msgspec.Meta(max_length=REASON_MAX_LENGTH)] | None = None


async def record_access(cmd: RecordAccess, uow: UnitOfWork) -> Access:
    access = Access(
        token_tenant=cmd.token_tenant,
        roles=cmd.roles,
        route=cmd.route,
        path=cmd.path,
        query=cmd.query,
        resource=cmd.resource,
        record_ids=cmd.record_ids,
        restricted_shown=cmd.restricted_shown,
    )
    uow.add(access)
    return access


# --- the read model ------------------------------------------------------------------------


class AccessEntry(msgspec.Struct, frozen=True):
    """One entry of the access log."""

    # Its position in the tenant's log (page with `after=`).
    position: int
    id: UUID
    at: datetime
    actor: str
    reason: str | None
    token_tenant: str
    roles: list[str]
    route: str
    path: str
    query: str
    resource: str
    record_ids: list[UUID]
    restricted_shown: bool
    # Ties the entry to the request's log line.
    correlation_id: str


TABLE = "access_log"
_COLUMNS = ", ".join(AccessEntry.__struct_fields__)


class AccessLog:
    """The access-log table of one service's schema and its queries."""

    def __init__(self, schema: str) -> None:
        self.table = f"{schema}.{TABLE}"
        self._list = Query(
            AccessEntry,
            f"""SELECT {_COLUMNS} FROM {self.table}
                WHERE position > $1
                  AND ($2::text IS NULL OR actor = $2)
                  AND ($3::timestamptz IS NULL OR at >= $3)
                  AND ($4::timestamptz IS NULL OR at < $4)
                  AND ($5::uuid IS NULL OR $5 = ANY (record_ids))
                ORDER BY position LIMIT $6""",
        )

    async def entries(
        self,
        conn: DbConnection,
        *,
        after: int,
        actor: str | None,
        since: datetime | None,
        until: datetime | None,
        record_id: UUID | None,
        limit: int,
    ) -> list[AccessEntry]:
        return await self._list.all(conn, after, actor, since, until, record_id, limit)


class AccessLogProjection:
    """The access log of every tenant of a service, from its `Access.Recorded` events."""

    name = "access_log"

    def __init__(self, schema: str) -> None:
        self.log = AccessLog(schema)
        self.tables = (self.log.table,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events of other records: not accesses."""

    @on.register
    async def _(self, event: Access.Recorded, conn: DbConnection, envelope: EventEnvelope) -> None:
        await conn.execute(
            f"""INSERT INTO {self.log.table} (tenant_id, {_COLUMNS})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            envelope.position,
            envelope.aggregate_id,
            envelope.occurred_at,
            envelope.meta.actor,
            envelope.meta.reason,
            event.token_tenant,
            event.roles,
            event.route,
            event.path,
            event.query,
            event.resource,
            event.record_ids,
            event.restricted_shown,
            envelope.meta.correlation_id,
        )
