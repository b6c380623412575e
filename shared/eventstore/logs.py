"""Reads a service's tenant logs with asyncpg: for the relay, projections and the events feed.

Row-level security lets a reader see one tenant's log at a time (`shared.eventstore.access`):
each read names its tenant in its own transaction, and the heads of all logs come from
`<service>.log_heads()`.

Commit order equals notification order (every append locks the table, see
`shared.eventstore.functions`), so reading `notification_id > position` never skips a late
commit; ids may have gaps, so nothing here assumes they are consecutive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from shared.db.pool import DbConnection
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.envelope import EventEnvelope, envelope_from_row
from shared.eventstore.stores import events_table, tenant_schema
from shared.resilience.faults import describe
from shared.tenancy import province_codes

log = logging.getLogger(__name__)


class TenantLogs:
    def __init__(
        self, service: str, catalogue: EventCatalogue, tenants: Iterable[str] | None = None
    ) -> None:
        self.service = service
        # Reads the events: upcast to their current versions, decoded by type for readers.
        self.catalogue = catalogue
        self.tenants = sorted(tenants if tenants is not None else province_codes())
        self.channel = events_table(service)

    def _table(self, tenant: str) -> str:
        if tenant not in province_codes():
            raise KeyError(f"unknown tenant {tenant!r}")
        return f"{tenant_schema(self.service, tenant)}.{events_table(self.service)}"

    async def heads(self, conn: DbConnection) -> dict[str, int]:
        rows = await conn.fetch(f"SELECT tenant, head FROM {self.service}.log_heads()")
        wanted = set(self.tenants)
        return {r["tenant"]: r["head"] for r in rows if r["tenant"] in wanted}

    async def head(self, conn: DbConnection, tenant: str) -> int:
        table = self._table(tenant)
        async with _in_tenant(conn, tenant):
            value = await conn.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {table}")
        return int(value)

    async def read(
        self,
        conn: DbConnection,
        tenant: str,
        *,
        after: int,
        limit: int,
        until: int | None = None,
    ) -> list[EventEnvelope]:
        """Events with position > after (and <= until), each naming the position of the
        event before it in the log, so a reader can prove it missed nothing."""
        async with _in_tenant(conn, tenant):
            return await self.read_in_transaction(
                conn, tenant, after=after, limit=limit, until=until
            )

    async def read_in_transaction(
        self,
        conn: DbConnection,
        tenant: str,
        *,
        after: int,
        limit: int,
        until: int | None = None,
    ) -> list[EventEnvelope]:
        """`read`, in the caller's transaction, which has named `tenant` already
        (`tenant_transaction`): a reader that writes what it read saves a transaction."""
        table = self._table(tenant)
        rows = await conn.fetch(
            f"""SELECT notification_id, originator_id, originator_version, topic, state
                FROM {table}
                WHERE notification_id >= (
                    SELECT coalesce(max(notification_id), 0) FROM {table}
                    WHERE notification_id <= $1)
                  AND ($3::bigint IS NULL OR notification_id <= $3)
                ORDER BY notification_id LIMIT $2""",
            after,
            limit + 1,
            until,
        )
        return self._envelopes(tenant, rows, after, limit)

    async def read_many(
        self, conn: DbConnection, after: Mapping[str, int], *, limit: int
    ) -> dict[str, list[EventEnvelope]]:
        """`read` for several tenants (each after its own position) in one round trip,
        through `<service>.logs_after` (`shared.eventstore.access`)."""
        tenants = list(after)
        for tenant in tenants:
            self._table(tenant)  # refuses an unknown tenant, as `read` does
        rows = await conn.fetch(
            f"SELECT * FROM {self.service}.logs_after($1::text[], $2::bigint[], $3)",
            tenants,
            [after[t] for t in tenants],
            limit,
        )
        of_tenant: dict[str, list[asyncpg.Record]] = {t: [] for t in tenants}
        for row in rows:
            of_tenant[row["tenant"]].append(row)
        return {t: self._envelopes(t, of_tenant[t], after[t], limit) for t in tenants}

    def _envelopes(
        self, tenant: str, rows: list[asyncpg.Record], after: int, limit: int
    ) -> list[EventEnvelope]:
        """The events of `rows` after `after`, each naming the position of the row before
        it (the first row may be the event at or before `after`, for that purpose)."""
        envelopes: list[EventEnvelope] = []
        previous: int | None = None
        for row in rows:
            position = row["notification_id"]
            if position > after:
                envelopes.append(
                    envelope_from_row(
                        service=self.service,
                        tenant=tenant,
                        position=position,
                        previous_position=previous,
                        aggregate_id=row["originator_id"],
                        aggregate_version=row["originator_version"],
                        topic=row["topic"],
                        state=row["state"],
                        catalogue=self.catalogue,
                    )
                )
            previous = position
        return envelopes[:limit]

    async def of_record(
        self, conn: DbConnection, tenant: str, aggregate_id: UUID
    ) -> list[EventEnvelope]:
        """Every event of one record, in order (its history); `previous_position` names the
        record's event before, not the log's."""
        table = self._table(tenant)
        async with _in_tenant(conn, tenant):
            rows = await conn.fetch(
                f"""SELECT notification_id, originator_id, originator_version, topic, state
                    FROM {table} WHERE originator_id = $1 ORDER BY originator_version""",
                aggregate_id,
            )
        envelopes: list[EventEnvelope] = []
        previous: int | None = None
        for row in rows:
            envelopes.append(
                envelope_from_row(
                    catalogue=self.catalogue,
                    service=self.service,
                    tenant=tenant,
                    position=row["notification_id"],
                    previous_position=previous,
                    aggregate_id=row["originator_id"],
                    aggregate_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                )
            )
            previous = row["notification_id"]
        return envelopes

    async def record_events(
        self,
        conn: DbConnection,
        tenant: str,
        aggregate_id: UUID,
        *,
        after_version: int,
        limit: int,
    ) -> list[asyncpg.Record]:
        """Up to `limit` stored events of one record after `after_version`, in order, as
        stored (`originator_version`, `topic`, `state`): in the caller's transaction, which
        has named `tenant` (`tenant_transaction`). For readers folding a record from a
        snapshot (`shared.audit`)."""
        rows: list[asyncpg.Record] = await conn.fetch(
            f"""SELECT originator_version, topic, state FROM {self._table(tenant)}
                WHERE originator_id = $1 AND originator_version > $2
                ORDER BY originator_version LIMIT $3""",
            aggregate_id,
            after_version,
            limit,
        )
        return rows


@asynccontextmanager
async def _in_tenant(conn: DbConnection, tenant: str) -> AsyncIterator[None]:
    """A transaction in which the log's row-level security lets `tenant`'s events through
    (`shared.eventstore.access`)."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        yield


class TenantChanges:
    """One reader's view of which tenant logs changed since it last looked."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._tenants: set[str] = set()
        self._everything = False

    def mark(self, tenant: str) -> None:
        self._tenants.add(tenant)
        self._event.set()

    def mark_everything(self) -> None:
        """Notifications may have been missed: the reader should look at every tenant."""
        self._everything = True
        self._event.set()

    async def wait(self, poll_interval: float, coalesce: float = 0.01) -> set[str] | None:
        """The tenants whose logs changed, or None when `poll_interval` passed without a
        notification (then the reader should check every tenant: a NOTIFY can be missed,
        e.g. while the listening connection reconnects). The short pause after a wake-up
        lets a burst of commits be read in one batch."""
        try:
            await asyncio.wait_for(self._event.wait(), poll_interval)
        except TimeoutError:
            return None
        await asyncio.sleep(coalesce)
        self._event.clear()
        changed, self._tenants = self._tenants, set()
        if self._everything:
            self._everything = False
            return None
        return changed


class LogWatcher:
    """Wakes readers as soon as a tenant of the service appends: the command path wakes its
    own process's readers and sends `NOTIFY <service>_events, '<tenant>'` after its commit
    (`shared.eventstore.wakeups`) for the others.

    The process's one listening connection: other channels of the service ride on it
    (`also_listen`), each told when notifications may have been lost."""

    def __init__(self, database_url: str, channel: str) -> None:
        self.database_url = database_url
        self.channel = channel
        self._readers: list[TenantChanges] = []
        # channel -> (told each payload, told when some may have been missed)
        self._others: dict[str, tuple[Callable[[str], None], Callable[[], None]]] = {}
        self._conn: asyncpg.Connection[Any] | None = None
        self._stopping = False
        self._reconnecting: asyncio.Task[None] | None = None
        # How many times a listening connection was opened (1 + reconnections).
        self.connections = 0

    def subscribe(self) -> TenantChanges:
        """Each reader gets its own view, so one reader's wake-up never eats another's."""
        changes = TenantChanges()
        self._readers.append(changes)
        return changes

    def also_listen(
        self, channel: str, heard: Callable[[str], None], missed: Callable[[], None]
    ) -> None:
        """Before `start`: `heard` gets each payload notified on `channel`; `missed` is
        called when the connection was lost (whatever was notified meanwhile is gone)."""
        self._others[channel] = (heard, missed)

    async def start(self) -> None:
        self._stopping = False
        conn = await asyncpg.connect(self.database_url)
        await conn.add_listener(self.channel, self._on_notify)
        for channel, (heard, _) in self._others.items():
            await conn.add_listener(channel, _payload_to(heard))
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        self.connections += 1

    def _on_terminated(self, _conn: DbConnection) -> None:
        # PostgreSQL restarted or the connection was cut: listen again. Until then the
        # readers' poll keeps them going, only slower.
        self._conn = None
        if not self._stopping:
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                await self.start()
            except Exception as exc:
                # Whatever the cause, keep trying: readers poll meanwhile, only slower.
                log.warning("log watcher: reconnecting to listen failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                # Whatever was notified while nobody listened is lost: look everywhere.
                for reader in self._readers:
                    reader.mark_everything()
                for _, missed in self._others.values():
                    missed()
                return

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def _on_notify(self, _conn: DbConnection, _pid: int, _channel: str, payload: object) -> None:
        self.wake(str(payload))

    def wake(self, tenant: str) -> None:
        """Tell every reader `tenant`'s log changed (a notification, or this process's own
        command path right after its commit)."""
        for reader in self._readers:
            reader.mark(tenant)

    async def stop(self) -> None:
        self._stopping = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _payload_to(
    heard: Callable[[str], None],
) -> Callable[[DbConnection, int, str, object], None]:
    def on_notify(_conn: DbConnection, _pid: int, _channel: str, payload: object) -> None:
        heard(str(payload))

    return on_notify


async def run_follower(
    step: Callable[[Iterable[str] | None], Awaitable[int]],
    changes: TenantChanges,
    stop: asyncio.Event,
    poll: float,
    what: str,
    report: Callable[[str | None], None],
) -> None:
    """The loop of every log follower (relay, projections): act on the tenants that changed,
    and on every tenant at least once per `poll` seconds (catches a lost NOTIFY and keeps
    lag metrics fresh even under constant load). `report` hears why it is failing (shown by
    health), or None once it works again."""
    tenants: set[str] | None = None
    last_full = 0.0
    failing_since: float | None = None
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        if loop.time() - last_full >= poll:
            tenants = None
        try:
            await step(tenants)
            if tenants is None:
                last_full = loop.time()
            report(None)
            failing_since = None
        except Exception as exc:
            # Stays visible (log, health, lag metric) and is retried from the stored
            # position; an event is never skipped. The trace once, then a line a minute.
            if failing_since is None:
                failing_since = loop.time()
                log.exception("%s failed; retrying", what)
            elif loop.time() - failing_since > 60:
                failing_since = loop.time()
                log.warning("%s still failing: %s", what, exc)
            report(describe(exc))
            await asyncio.sleep(poll)
            tenants = None
            continue
        tenants = await changes.wait(poll)
