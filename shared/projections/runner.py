"""Applies a service's events to its read models: rows and the tracking position are written
in one transaction, under the tenant's row-level security, so each event counts exactly once.

An event a projection cannot apply stalls that (projection, tenant) only, at that event, with
its reason (shared/resilience/stalls.py); every other tenant and projection goes on. An
outage of PostgreSQL is not the event's fault: the pass fails and is retried as a whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

import asyncpg

from shared.db.pool import DbConnection, tenant_transaction
from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantChanges, TenantLogs, run_follower
from shared.personal.keys import SubjectKeys, sealed_subjects
from shared.projections.dispatch import Dispatch, Reader
from shared.resilience.faults import describe, is_outage
from shared.resilience.stalls import Stalls

log = logging.getLogger(__name__)


class Projection(Reader, Protocol):
    """A reader of the service's own log (`shared.projections.dispatch`) that writes read
    models."""

    @property
    def tables(self) -> tuple[str, ...]:
        """Read-model tables this projection owns: emptied by a rebuild."""


class EventFailed(Exception):
    """A projection could not apply this event (not an outage: the event's own fault)."""

    def __init__(self, event: EventEnvelope, cause: Exception) -> None:
        super().__init__(f"{event.message_id}: {describe(cause)}")
        self.event = event
        self.cause = cause


class ProjectionRunner:
    def __init__(
        self,
        *,
        schema: str,
        pool: asyncpg.Pool[Any],
        logs: TenantLogs,
        projections: list[Projection],
        batch_size: int = 200,
        keys: SubjectKeys | None = None,
    ) -> None:
        self.schema = schema
        # The service's own read models see its personal data (`shared.personal`).
        self.keys = keys
        self.pool = pool
        self.logs = logs
        self.projections = projections
        self._dispatch = {p.name: Dispatch(p, logs.catalogue) for p in projections}
        self.batch_size = batch_size
        self.lag: dict[str, int] = {p.name: 0 for p in projections}
        self.stalls = {p.name: Stalls(pool, schema, follower(p)) for p in projections}
        # Why the last pass failed (PostgreSQL unreachable), for health; None: fine.
        self.waiting_on: str | None = None
        # Per projection: stalled tenants, each with whether its retry is not due yet.
        self._stalled: dict[str, dict[str, bool]] = {}

    async def _positions(self, projection: Projection) -> dict[str, int]:
        rows = await self.pool.fetch(
            f"SELECT tenant_id, position FROM {self.schema}.projection_positions "
            "WHERE projection = $1",
            projection.name,
        )
        return {r["tenant_id"]: r["position"] for r in rows}

    async def catch_up(self, tenants: Iterable[str] | None = None) -> int:
        """Apply everything committed so far (in `tenants`, or in every tenant); returns
        how many events were applied. A tenant whose event fails is stalled, not skipped."""
        heads: dict[str, int] | None = None
        if tenants is None:
            async with self.pool.acquire() as conn:
                heads = await self.logs.heads(conn)
            tenants = list(heads)
        applied = 0
        for projection in self.projections:
            positions = await self._positions(projection)
            # Read on full passes only (once a second): between them this runner is the one
            # writing stalls, and an operator's `mpks retry` waits at most for the next one.
            if heads is not None or projection.name not in self._stalled:
                self._stalled[projection.name] = await self.stalls[projection.name].current()
            stalled = self._stalled[projection.name]
            for tenant in tenants:
                if stalled.get(tenant) or (
                    heads is not None and heads[tenant] <= positions.get(tenant, 0)
                ):
                    continue
                count, positions[tenant] = await self._catch_up_isolated(
                    projection, tenant, positions.get(tenant, 0), tenant in stalled
                )
                applied += count
            if heads is not None:
                # Measured against the log's head, stalled tenants included: a stuck
                # projection shows a growing number, never 0.
                self.lag[projection.name] = sum(
                    max(0, head - positions.get(t, 0)) for t, head in heads.items()
                )
        return applied

    async def _catch_up_isolated(
        self, projection: Projection, tenant: str, position: int, was_stalled: bool
    ) -> tuple[int, int]:
        stalls = self.stalls[projection.name]
        applied = 0
        while True:
            try:
                count, position = await self._catch_up_tenant(
                    projection, tenant, position, self.batch_size
                )
                applied += count
                break
            except EventFailed as failed_batch:
                # The batch rolled back as a whole: apply one event at a time up to the one
                # at fault, so the stall names it and everything before it is in the read
                # model; past it (a failure that did not recur), batches again.
                position = await self._position(projection, tenant)
                try:
                    count, position = await self._catch_up_tenant(
                        projection, tenant, position, 1, until=failed_batch.event.position
                    )
                    applied += count
                except EventFailed as failed:
                    log.error(
                        "projection %s stalled for tenant %s at %s: %s",
                        projection.name,
                        tenant,
                        failed.event.position,
                        describe(failed.cause),
                    )
                    await stalls.record(
                        tenant,
                        failed.event.position,
                        failed.event.message_id,
                        describe(failed.cause),
                    )
                    self._stalled.setdefault(projection.name, {})[tenant] = True
                    return applied, await self._position(projection, tenant)
        if was_stalled:
            log.info("projection %s resumed for tenant %s", projection.name, tenant)
            await stalls.clear(tenant)
            self._stalled.get(projection.name, {}).pop(tenant, None)
        return applied, position

    async def _position(
        self, projection: Projection, tenant: str, conn: DbConnection | None = None
    ) -> int:
        value = await (conn or self.pool).fetchval(
            f"""SELECT position FROM {self.schema}.projection_positions
                WHERE projection = $1 AND tenant_id = $2""",
            projection.name,
            tenant,
        )
        return int(value or 0)

    async def _catch_up_tenant(
        self,
        projection: Projection,
        tenant: str,
        position: int,
        batch_size: int,
        until: int | None = None,
    ) -> tuple[int, int]:
        applied = 0
        while True:
            async with tenant_transaction(self.pool, tenant) as conn:
                # A read model is derived data and its rows commit with their position: a
                # crash can only lose both together, and they are replayed. So this commit
                # need not wait for its flush to disk (which would double a command's cost).
                # Replicas of a service may follow the same log: the lock serialises them
                # per (projection, tenant), and events another replica applied meanwhile
                # are skipped, so each event still counts exactly once. (The position and
                # the events are read by the next statements, whose snapshots are taken
                # after the lock.) One transaction reads the batch and writes its rows.
                await conn.execute(
                    "SELECT set_config('synchronous_commit', 'off', true), "
                    "pg_advisory_xact_lock(hashtext($1))",
                    f"{projection.name}/{tenant}",
                )
                position = max(position, await self._position(projection, tenant, conn))
                batch = await self.logs.read_in_transaction(
                    conn, tenant, after=position, limit=batch_size, until=until
                )
                if not batch:
                    break
                if self.keys is not None:
                    batch = await self._reveal(conn, tenant, batch)
                for event in batch:
                    await _apply(self._dispatch[projection.name], conn, event)
                position = batch[-1].position
                await conn.execute(
                    f"""INSERT INTO {self.schema}.projection_positions
                          (projection, tenant_id, position) VALUES ($1, $2, $3)
                        ON CONFLICT (projection, tenant_id)
                        DO UPDATE SET position = EXCLUDED.position""",
                    projection.name,
                    tenant,
                    position,
                )
            applied += len(batch)
            if len(batch) < batch_size:
                break
        return applied, position

    async def _reveal(
        self, conn: DbConnection, tenant: str, batch: list[EventEnvelope]
    ) -> list[EventEnvelope]:
        assert self.keys is not None
        await self.keys.load(conn, tenant, {s for e in batch for s in sealed_subjects(e.data)})
        revealed: list[EventEnvelope] = []
        for event in batch:
            try:
                revealed.append(self.keys.opened(tenant, event))
            except Exception as exc:
                # A value that does not open (tampered with) stalls this tenant at it.
                raise EventFailed(event, exc) from exc
        return revealed

    def _report(self, failing: str | None) -> None:
        self.waiting_on = failing

    async def run(self, changes: TenantChanges, stop: asyncio.Event, poll: float = 1.0) -> None:
        await run_follower(self.catch_up, changes, stop, poll, "projection catch-up", self._report)

    async def rebuild(self, owner_conn: DbConnection, name: str) -> int:
        """Drop a read model's rows and replay every tenant's log into it. A tenant with an
        event the projection cannot apply is stalled there (and reported by `mpks status`);
        every other tenant is rebuilt in full.

        Runs on an owner connection: emptying every tenant's rows is beyond any one tenant.
        """
        projection = next(p for p in self.projections if p.name == name)
        async with owner_conn.transaction():
            for table in projection.tables:
                await owner_conn.execute(f"DELETE FROM {table}")
            await owner_conn.execute(
                f"DELETE FROM {self.schema}.projection_positions WHERE projection = $1", name
            )
            await owner_conn.execute(
                f"DELETE FROM {self.schema}.stalls WHERE follower = $1", follower(projection)
            )
        runner = ProjectionRunner(
            schema=self.schema,
            pool=self.pool,
            logs=self.logs,
            projections=[projection],
            batch_size=self.batch_size,
            keys=self.keys,
        )
        return await runner.catch_up()


def follower(projection: Projection) -> str:
    return f"projection:{projection.name}"


async def _apply(dispatch: Dispatch, conn: DbConnection, event: EventEnvelope) -> None:
    try:
        await dispatch.deliver(conn, event)
    except Exception as exc:
        if is_outage(exc):
            raise
        raise EventFailed(event, exc) from exc
