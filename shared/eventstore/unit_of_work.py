"""The unit of work on a tenant's PostgreSQL event log, through the `eventsourcing` library.

The library is synchronous: loading and saving run in worker threads, never more at a time
than the pool has connections (extra threads would only queue there). A command waits for
its turn as long as for a connection, then is told to come back (PostgreSQL down, or more
load than the pool can take).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

import anyio
import anyio.to_thread
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from shared.domain.aggregate import AggregateRoot
from shared.eventstore.context import CommandContext
from shared.eventstore.stores import TenantApplication, TenantStores
from shared.resilience.faults import CONNECTION_WAIT_SECONDS, Unavailable
from shared.service_layer.unit_of_work import ConcurrentWrite, IdempotencyRecord, UnitOfWork


class EventStoreUnitOfWork(UnitOfWork):
    def __init__(
        self,
        app: TenantApplication,
        actor: CommandContext,
        expected_versions: Mapping[UUID, int],
        threads: anyio.CapacityLimiter,
    ) -> None:
        super().__init__(app.tenant, actor.scope, expected_versions)
        self.app = app
        self._threads = threads

    async def _load(self, aggregate_id: UUID) -> AggregateRoot | None:
        return await anyio.to_thread.run_sync(self._get, aggregate_id, limiter=self._threads)

    def _get(self, aggregate_id: UUID) -> AggregateRoot | None:
        try:
            found: object = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, AggregateRoot) else None

    async def _save(
        self, aggregates: Sequence[AggregateRoot], idempotency: IdempotencyRecord | None
    ) -> int | None:
        # Not cancellable once started (to_thread): a command that committed is reported.
        return await anyio.to_thread.run_sync(
            self._record, aggregates, idempotency, limiter=self._threads
        )

    def _record(
        self, aggregates: Sequence[AggregateRoot], idempotency: IdempotencyRecord | None
    ) -> int | None:
        try:
            if aggregates or idempotency is None:
                recordings = self.app.save(*aggregates, idempotency=idempotency)
                return max((r.notification.id for r in recordings), default=None)
            self.app.recorder.record_without_events(idempotency)
            return None
        except IntegrityError as exc:
            raise ConcurrentWrite(str(exc)) from exc

    async def find_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        return await anyio.to_thread.run_sync(
            self.app.recorder.find_idempotency_record, key, limiter=self._threads
        )

    async def head(self) -> int | None:
        return await anyio.to_thread.run_sync(
            self.app.recorder.max_notification_id, limiter=self._threads
        )


class EventStoreUnitsOfWork:
    """Opens units of work on a service's tenant logs, admitting no more commands at a time
    than the pool has connections."""

    def __init__(self, stores: TenantStores) -> None:
        self.stores = stores
        self.admission = anyio.CapacityLimiter(stores.pool.max_connections)
        # Admission above keeps this one from ever being the one that waits.
        self.threads = anyio.CapacityLimiter(stores.pool.max_connections)

    def __call__(
        self, tenant: str, ctx: CommandContext, expected_versions: Mapping[UUID, int]
    ) -> _Admitted:
        return _Admitted(self, tenant, ctx, expected_versions)


class _Admitted:
    """A unit of work once the command's turn has come (a class, not a generator-based
    context manager: this runs on every command)."""

    def __init__(
        self,
        units: EventStoreUnitsOfWork,
        tenant: str,
        ctx: CommandContext,
        expected_versions: Mapping[UUID, int],
    ) -> None:
        self.units = units
        self.tenant = tenant
        self.ctx = ctx
        self.expected_versions = expected_versions

    async def __aenter__(self) -> UnitOfWork:
        admitted = False
        with anyio.move_on_after(CONNECTION_WAIT_SECONDS):
            await self.units.admission.acquire()
            admitted = True
        if not admitted:
            raise Unavailable("PostgreSQL", "every event-store connection stayed busy")
        try:
            app = self.units.stores.get(self.tenant)
        except BaseException:
            self.units.admission.release()
            raise
        return EventStoreUnitOfWork(app, self.ctx, self.expected_versions, self.units.threads)

    async def __aexit__(self, *exc_info: object) -> None:
        self.units.admission.release()
