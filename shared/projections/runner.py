"""Applies a service's events to its read models: rows and the tracking position are written
in one transaction, under the tenant's row-level security, so each event counts exactly once.

The projections at the same position in a tenant's log (all of them, but for one that is
new, rebuilt or stalled) share the work: one read of the new events, one transaction, one
statement writing their positions. Each projection adds to a command's cost only what its
own rows cost, not a read and a position of its own.

An event a projection cannot apply stalls that (projection, tenant) only, at that event, with
its reason (shared/resilience/stalls.py); every other tenant and projection goes on. An
outage of PostgreSQL is not the event's fault: the pass fails and is retried as a whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol, cast

import asyncpg

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope, storable
from shared.eventstore.logs import TenantChanges, TenantLogs, run_follower
from shared.personal.keys import SubjectKeys, sealed_subjects
from shared.projections.dispatch import Dispatch, Reader
from shared.projections.writes import BatchConnection, HeldWrites, WriteFailed
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
        # Per projection: its position in each tenant's log when this runner last looked
        # (read on full passes, kept by the batches). It only groups the projections and
        # skips idle tenants: each batch reads the positions again under its locks.
        self._known: dict[str, dict[str, int]] = {}

    async def _positions(self, conn: DbConnection) -> dict[str, dict[str, int]]:
        rows = await conn.fetch(
            f"""SELECT projection, tenant_id, position FROM {self.schema}.projection_positions
                WHERE projection = ANY($1::text[])""",
            [p.name for p in self.projections],
        )
        positions: dict[str, dict[str, int]] = {p.name: {} for p in self.projections}
        for r in rows:
            positions[r["projection"]][r["tenant_id"]] = r["position"]
        return positions

    async def catch_up(self, tenants: Iterable[str] | None = None) -> int:
        """Apply everything committed so far (in `tenants`, or in every tenant); returns
        how many events were applied (an event counts once per projection it was given to).
        A tenant whose event fails is stalled, not skipped."""
        for projection in self.projections:
            # Read on full passes only: between them this runner is the one writing
            # stalls, and an operator's `mpks retry` waits at most for the next one.
            if tenants is None or projection.name not in self._stalled:
                self._stalled[projection.name] = await self.stalls[projection.name].current()
        # One connection for the pass: each release of a pooled connection costs a reset
        # (four statements, `shared.db.pool.create_pool`), and every transaction below
        # sets only transaction-local settings and locks. (Recording or clearing a stall
        # takes a second one for a moment.)
        async with self.pool.acquire() as conn:
            heads: dict[str, int] | None = None
            if tenants is None:
                heads = await self.logs.heads(conn)
                tenants = list(heads)
                # On full passes only (once a second): between them only this runner moves
                # its positions (the transactions read them again under their locks).
                self._known = await self._positions(conn)
            applied = 0
            for tenant in tenants:
                due = [
                    p
                    for p in self.projections
                    if not self._stalled[p.name].get(tenant)
                    and (heads is None or heads[tenant] > self._at(p, tenant))
                ]
                applied += await self._catch_up_tenant(conn, tenant, due)
        if heads is not None:
            for projection in self.projections:
                # Measured against the log's head, stalled tenants included: a stuck
                # projection shows a growing number, never 0.
                self.lag[projection.name] = sum(
                    max(0, head - self._at(projection, t)) for t, head in heads.items()
                )
        return applied

    def _at(self, projection: Projection, tenant: str) -> int:
        return self._known.get(projection.name, {}).get(tenant, 0)

    def _by_position(self, projections: list[Projection], tenant: str) -> list[list[Projection]]:
        """Projections at the same position in the tenant's log, the furthest first (the
        read models in use before one being rebuilt)."""
        groups: dict[int, list[Projection]] = {}
        for projection in projections:
            groups.setdefault(self._at(projection, tenant), []).append(projection)
        return [groups[position] for position in sorted(groups, reverse=True)]

    async def _catch_up_tenant(
        self, conn: DbConnection, tenant: str, projections: list[Projection]
    ) -> int:
        """The projections at the same position read the tenant's new events once, apply
        them in one transaction and move on together; one that is behind (new, rebuilt,
        retried after a stall) catches up on its own and joins them once it is there."""
        applied = 0
        work = self._by_position(projections, tenant)
        while work:
            group = work.pop(0)
            if len(group) == 1:
                applied += await self._catch_up_isolated(conn, group[0], tenant)
                continue
            try:
                count, behind = await self._batches(conn, tenant, group, self.batch_size)
            except EventFailed:
                # The batch rolled back for every projection in it: each goes on alone, so
                # the event stalls only the projection it failed in (its batches that
                # committed stay).
                for projection in group:
                    applied += await self._catch_up_isolated(conn, projection, tenant)
                continue
            applied += count
            for projection in group:
                if projection not in behind:
                    await self._resumed(projection, tenant)
            # Found behind the others under the lock (a replica or a rebuild moved them).
            work += self._by_position(behind, tenant)
        return applied

    async def _catch_up_isolated(
        self, conn: DbConnection, projection: Projection, tenant: str
    ) -> int:
        applied = 0
        while True:
            try:
                applied += (await self._batches(conn, tenant, [projection], self.batch_size))[0]
                break
            except EventFailed as failed_batch:
                # The batch rolled back as a whole: apply one event at a time up to the one
                # at fault, so the stall names it and everything before it is in the read
                # model; past it (a failure that did not recur), batches again.
                try:
                    applied += (
                        await self._batches(
                            conn, tenant, [projection], 1, until=failed_batch.event.position
                        )
                    )[0]
                except EventFailed as failed:
                    log.error(
                        "projection %s stalled for tenant %s at %s: %s",
                        projection.name,
                        tenant,
                        failed.event.position,
                        describe(failed.cause),
                    )
                    await self.stalls[projection.name].record(
                        tenant,
                        failed.event.position,
                        failed.event.message_id,
                        describe(failed.cause),
                    )
                    self._stalled.setdefault(projection.name, {})[tenant] = True
                    return applied
        await self._resumed(projection, tenant)
        return applied

    async def _resumed(self, projection: Projection, tenant: str) -> None:
        """A projection caught up in a tenant where it was stalled: the stall is over."""
        if tenant in self._stalled.get(projection.name, {}):
            log.info("projection %s resumed for tenant %s", projection.name, tenant)
            await self.stalls[projection.name].clear(tenant)
            self._stalled[projection.name].pop(tenant, None)

    async def _batches(
        self,
        conn: DbConnection,
        tenant: str,
        group: list[Projection],
        batch_size: int,
        until: int | None = None,
    ) -> tuple[int, list[Projection]]:
        """Batches of the tenant's new events for `group`, until none is left; how many
        events were applied (once per projection) and the projections found behind the
        others, which took no part."""
        applied = 0
        behind: list[Projection] = []
        while group:
            count, group, dropped = await self._batch(conn, tenant, group, batch_size, until)
            applied += count * len(group)
            behind += dropped
            if count < batch_size:
                break
        return applied, behind

    async def _batch(
        self,
        conn: DbConnection,
        tenant: str,
        group: list[Projection],
        batch_size: int,
        until: int | None,
    ) -> tuple[int, list[Projection], list[Projection]]:
        """One transaction: up to `batch_size` events after the group's position, applied
        by each projection of the group, and their positions. Returns the number of events,
        the projections that applied them and those found behind (which did not)."""
        names = [p.name for p in group]
        async with conn.transaction():
            # A read model is derived data and its rows commit with their position: a
            # crash can only lose both together, and they are replayed. So this commit
            # need not wait for its flush to disk (which would double a command's cost).
            # Replicas of a service may follow the same log: the locks serialise them
            # per (projection, tenant), taken in one order so two replicas never wait on
            # each other, and events another replica applied meanwhile are skipped, so
            # each event still counts exactly once. (The positions and the events are read
            # by the next statements, whose snapshots are taken after the locks.) The
            # tenant is named as `tenant_transaction` does, in the same statement.
            await conn.execute(
                """SELECT set_config('app.tenant_id', $1, true),
                          set_config('synchronous_commit', 'off', true),
                          (SELECT count(pg_advisory_xact_lock(key)) FROM (
                             SELECT hashtext(name || '/' || $1) AS key
                             FROM unnest($2::text[]) AS name ORDER BY 1) AS keys)""",
                tenant,
                names,
            )
            locked = {
                r["projection"]: r["position"]
                for r in await conn.fetch(
                    f"""SELECT projection, position FROM {self.schema}.projection_positions
                        WHERE tenant_id = $1 AND projection = ANY($2::text[])""",
                    tenant,
                    names,
                )
            }
            position = max(locked.get(name, 0) for name in names)
            for projection in group:
                self._known.setdefault(projection.name, {})[tenant] = locked.get(projection.name, 0)
            members = [p for p in group if locked.get(p.name, 0) == position]
            behind = [p for p in group if locked.get(p.name, 0) != position]
            batch = await self.logs.read_in_transaction(
                conn, tenant, after=position, limit=batch_size, until=until
            )
            if not batch:
                return 0, members, behind
            if self.keys is not None:
                batch = await self._reveal(conn, tenant, batch)
            # Each event decoded once for the projections that read it; their writes held
            # and sent together (`shared.projections.writes`).
            writes = HeldWrites(conn)
            for event in batch:
                row = storable(event)
                decoded: Any = None
                for projection in members:
                    dispatch = self._dispatch[projection.name]
                    if dispatch.reads(row):
                        decoded = await _apply(
                            dispatch, writes.writer(projection.name, row), row, decoded
                        )
            await _send(writes)
            position = batch[-1].position
            await conn.execute(
                f"""INSERT INTO {self.schema}.projection_positions
                      (projection, tenant_id, position)
                    SELECT unnest($1::text[]), $2, $3
                    ON CONFLICT (projection, tenant_id)
                    DO UPDATE SET position = EXCLUDED.position""",
                [p.name for p in members],
                tenant,
                position,
            )
        for projection in members:
            self._known[projection.name][tenant] = position
        return len(batch), members, behind

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


async def _apply(
    dispatch: Dispatch, conn: BatchConnection, event: EventEnvelope, decoded: Any
) -> Any:
    """Hand the event to one reader; returns it decoded, for the next reader."""
    try:
        # The batch's connection serves every call a read-model handler makes
        # (`shared.projections.writes`).
        return await dispatch.hand_over(cast(DbConnection, conn), event, decoded)
    except WriteFailed as failed:
        raise EventFailed(failed.event, failed.cause) from failed.cause
    except Exception as exc:
        if is_outage(exc):
            raise
        raise EventFailed(event, exc) from exc


async def _send(writes: HeldWrites) -> None:
    try:
        await writes.send()
    except WriteFailed as failed:
        raise EventFailed(failed.event, failed.cause) from failed.cause
