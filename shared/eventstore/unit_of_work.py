"""The unit of work on a tenant's PostgreSQL event log, on asyncpg in the event loop.

Each step is one statement calling the tenant schema's functions
(`shared.eventstore.functions`), so one round trip: loading an aggregate, the append (the
table lock, the events and the Idempotency-Key in one implicit transaction, shared with the
other commands of this process appending to the same log at that moment:
`shared.eventstore.appends`), a key lookup, the log's head. The eventsourcing library still
provides the domain model and the mapping between domain and stored events; no worker thread
is on the command path.

A command holds one connection of the event-store pool from its admission to its answer:
no more commands run at a time than the pool has connections, and a command waits for its
turn as long as for a connection, then is told to come back (PostgreSQL down, or more load
than the pool can take).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from eventsourcing.persistence import StoredEvent

from shared.db.pool import DbConnection
from shared.domain.aggregate import AggregateRoot
from shared.eventstore.appends import TenantAppends
from shared.eventstore.context import CommandContext
from shared.eventstore.envelope import StoredState
from shared.eventstore.mapper import EnvelopeMapper
from shared.eventstore.record_cache import RecordCache
from shared.eventstore.stores import tenant_schema
from shared.personal.fields import SEALED_KEY
from shared.personal.keys import sealed_subjects
from shared.resilience.faults import CONNECTION_WAIT_SECONDS, Unavailable
from shared.service_layer.unit_of_work import IdempotencyRecord, StaleRead, UnitOfWork
from shared.tenancy import province_codes

# How a sealed value shows in a stored state's JSON.
SEALED_MARK = f'"{SEALED_KEY}"'.encode()


class TenantLogStatements:
    """The statements on one tenant's log (built once per tenant: this runs per command)."""

    def __init__(self, service: str, tenant: str) -> None:
        schema = tenant_schema(service, tenant)
        self.load = f"SELECT * FROM {schema}.aggregate_events($1, $2)"
        self.append = TenantAppends(
            f"SELECT * FROM {schema}.append_events("
            "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            tenant,
        )
        self.find_key = f"SELECT * FROM {schema}.idempotency_record($1, $2)"
        self.head = f"SELECT {schema}.log_head($1)"


class EventStoreUnitOfWork(UnitOfWork):
    def __init__(
        self,
        conn: DbConnection,
        statements: TenantLogStatements,
        mapper: EnvelopeMapper,
        actor: CommandContext,
        expected_versions: Mapping[UUID, int],
        appended: Callable[[str], None],
        cache: RecordCache,
    ) -> None:
        super().__init__(actor.tenant, actor.scope, expected_versions)
        self._conn = conn
        self._sql = statements
        self._mapper = mapper
        self._appended = appended
        self._cache = cache
        # Consulted records answered from the cache rather than the log.
        self._from_cache: set[UUID] = set()

    async def _load(self, aggregate_id: UUID) -> AggregateRoot | None:
        rows = await self._conn.fetch(self._sql.load, self.tenant, aggregate_id)
        return await self._fold(aggregate_id, rows)

    async def _consult(self, aggregate_id: UUID) -> AggregateRoot | None:
        rows = self._cache.get(self.tenant, aggregate_id)
        if rows is None:
            fetched = await self._conn.fetch(self._sql.load, self.tenant, aggregate_id)
            rows = tuple((r[0], r[1], bytes(r[2])) for r in fetched)
            self._cache.put(self.tenant, aggregate_id, rows)
        else:
            self._from_cache.add(aggregate_id)
        return await self._fold(aggregate_id, rows)

    def forget_consulted(self) -> bool:
        self._cache.drop(self.tenant, self._consulted)
        return bool(self._from_cache)

    async def _fold(self, aggregate_id: UUID, rows: Sequence[Any]) -> AggregateRoot | None:
        """The record after its stored events, `rows` of (version, topic, state)."""
        keys = self._mapper.keys
        if keys is not None:
            # Personal values open with their subjects' keys: loaded first (cached keys
            # cost nothing; a record without personal data is not even parsed twice).
            subjects = {
                s
                for *_, state in rows
                if SEALED_MARK in state
                for s in sealed_subjects(msgspec.json.decode(state, type=StoredState).data)
            }
            if subjects:
                await keys.load(self._conn, self.tenant, subjects)
        # What the library's repository does: each event mutates the aggregate so far.
        aggregate: Any = None
        for version, topic, state in rows:
            stored = StoredEvent(
                originator_id=aggregate_id, originator_version=version, topic=topic, state=state
            )
            aggregate = self._mapper.to_domain_event(stored).mutate(aggregate)
        return aggregate if isinstance(aggregate, AggregateRoot) else None

    async def _save(
        self,
        aggregates: Sequence[AggregateRoot],
        idempotency: IdempotencyRecord | None,
        reads: Mapping[UUID, int],
    ) -> int | None:
        domain_events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        subjects = self._mapper.subjects(domain_events)
        if subjects and self._mapper.keys is not None:
            # Before the append, in a statement of its own: a key made for a command that
            # then fails encrypts nothing (see `shared.personal.keys`).
            await self._mapper.keys.ensure(self._conn, self.tenant, subjects)
        events = [self._mapper.to_stored_event(event) for event in domain_events]
        if not events and idempotency is None:
            return None
        # Raises ConcurrentWrite when another command recorded one of these versions of a
        # record, or this Idempotency-Key.
        try:
            positions = await self._sql.append.append(self._conn, events, idempotency, reads)
        except StaleRead:
            self._cache.drop(self.tenant, reads)
            raise
        # Changed by this process: what a consultation kept of them is no longer the latest.
        self._cache.drop(self.tenant, (a.id for a in aggregates))
        if not positions:
            return None
        self._appended(self.tenant)
        return positions[-1]

    async def find_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        row = await self._conn.fetchrow(self._sql.find_key, self.tenant, key)
        if row is None:
            return None
        return IdempotencyRecord(key, row["fingerprint"], bytes(row["body"]))

    async def head(self) -> int | None:
        head: int | None = await self._conn.fetchval(self._sql.head, self.tenant)
        return head


class EventStoreUnitsOfWork:
    """Opens units of work on a service's tenant logs, one pooled connection each.

    `appended` hears the tenant of every append, right after its commit: it wakes the
    readers (`shared.eventstore.wakeups`)."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        service: str,
        mapper: EnvelopeMapper,
        appended: Callable[[str], None],
    ) -> None:
        self.pool = pool
        self.mapper = mapper
        self.appended = appended
        self.cache = RecordCache()
        self._statements = {t: TenantLogStatements(service, t) for t in province_codes()}

    def __call__(
        self, tenant: str, ctx: CommandContext, expected_versions: Mapping[UUID, int]
    ) -> _Admitted:
        try:
            statements = self._statements[tenant]
        except KeyError:
            raise KeyError(f"unknown tenant {tenant!r}") from None
        return _Admitted(self, statements, ctx, expected_versions)


class _Admitted:
    """A unit of work once the command's connection is there (a class, not a
    generator-based context manager: this runs on every command)."""

    def __init__(
        self,
        units: EventStoreUnitsOfWork,
        statements: TenantLogStatements,
        ctx: CommandContext,
        expected_versions: Mapping[UUID, int],
    ) -> None:
        self.units = units
        self.statements = statements
        self.ctx = ctx
        self.expected_versions = expected_versions
        self.conn: PoolConnectionProxy[Any] | None = None

    async def __aenter__(self) -> UnitOfWork:
        try:
            self.conn = await self.units.pool.acquire(timeout=CONNECTION_WAIT_SECONDS)
        except TimeoutError:
            raise Unavailable("PostgreSQL", "every event-store connection stayed busy") from None
        return EventStoreUnitOfWork(
            self.conn,
            self.statements,
            self.units.mapper,
            self.ctx,
            self.expected_versions,
            self.units.appended,
            self.units.cache,
        )

    async def __aexit__(self, *exc_info: object) -> None:
        if self.conn is not None:
            await self.units.pool.release(self.conn)
