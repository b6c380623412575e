"""Snapshots of records, so that reading a long record as of a date folds at most a
snapshot interval of events instead of its whole history.

Every `SNAPSHOT_INTERVAL`-th version of every record of a service, a kernel projection
(`SnapshotsProjection`, run by the worker with the service's read models: exactly once, in
the tenant's transaction, rebuilt by `mpks rebuild SERVICE snapshots`) stores the record's
state at that version in `<service>.snapshots`, with the latest time of the events folded
into it. A snapshot is derived data: dropping any of them only makes reads fold more events.
The command path does not read them (its loads stay as they were).

The state is the aggregate's attributes as JSON, each value that JSON would not give back
as it was (UUIDs, datetimes, enums, Structs...) tagged with its type, so a record read from
a snapshot is the record the events make, value types and all.

Personal data: a snapshot holds the record's state in clear, as folded from its events. An
erasure that makes a record's personal fields unreadable in its events must also drop that
record's snapshots (`forget_snapshots`, in the erasure's transaction); later snapshots are
folded from the events as they then read.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from shared.db.pool import DbConnection
from shared.domain.aggregate import AggregateRoot
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantLogs
from shared.eventstore.mapper import EnvelopeMapper

# Versions between two snapshots of a record: an as-of read folds at most this many events
# after its snapshot (bench/as_of.py measures the read with and without them).
SNAPSHOT_INTERVAL = 50
# The library's bookkeeping that is no part of a record's state.
_NOT_STATE = {"_pending_events"}
_JSON_TYPES = (str, int, float, bool)
_TYPE, _VALUE, _ITEMS, _DICT = "$t", "$v", "$l", "$d"


class StateCodec:
    """A record's attributes to JSON and back, each value with its type."""

    def __init__(self, catalogue: EventCatalogue) -> None:
        self.catalogue = catalogue
        self._encoder = msgspec.json.Encoder()

    def encode(self, aggregate: AggregateRoot) -> bytes:
        state = {k: _tagged(v) for k, v in vars(aggregate).items() if k not in _NOT_STATE}
        return self._encoder.encode(state)

    def decode(self, aggregate_name: str, state: bytes) -> AggregateRoot:
        cls = self.catalogue.aggregate_class(aggregate_name)
        aggregate: AggregateRoot = object.__new__(cls)  # type: ignore[assignment]
        values = msgspec.json.decode(state)
        # As the library restores its own snapshots: the attributes, no __init__.
        aggregate.__dict__.update({k: _untagged(v) for k, v in values.items()})
        aggregate.__dict__["_pending_events"] = []
        return aggregate


def _tagged(value: Any) -> Any:
    # asyncpg gives ids as its own UUID subclass: stored as the standard one.
    kind: type[Any] = UUID if isinstance(value, UUID) else type(value)
    if value is None or kind in _JSON_TYPES:
        return value
    if kind in (list, tuple, set, frozenset):
        return {_TYPE: get_topic(kind), _ITEMS: [_tagged(v) for v in value]}
    if kind is dict and all(type(k) is str for k in value):
        return {_DICT: {k: _tagged(v) for k, v in value.items()}}
    return {_TYPE: get_topic(kind), _VALUE: msgspec.to_builtins(value)}


def _untagged(value: Any) -> Any:
    if not isinstance(value, dict):
        return [_untagged(v) for v in value] if isinstance(value, list) else value
    if _DICT in value:
        return {k: _untagged(v) for k, v in value[_DICT].items()}
    kind = _loaded_type(value[_TYPE])
    if _ITEMS in value:
        return kind(_untagged(v) for v in value[_ITEMS])
    return msgspec.convert(value[_VALUE], kind, strict=False)


def _loaded_type(topic: str) -> Any:
    """The type a topic names, from modules already loaded only: a stored snapshot never
    makes this process import anything."""
    module_name, _, qualname = topic.partition(":")
    found: Any = sys.modules[module_name]
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, type):
        raise TypeError(f"{topic} is not a type")
    return found


@dataclass(frozen=True)
class Folded:
    """A record folded up to a version or a moment."""

    # None: no event of it up to there.
    aggregate: AggregateRoot | None
    # The latest time of the events folded.
    recorded_until: datetime | None
    # The first event left out because it happened after the moment (None: none was).
    next_event: AggregateRoot.Event | None
    # How many events were folded from the log (beyond the snapshot started from).
    folded: int


class Snapshots:
    """A service's record snapshots: folding a record from its latest usable snapshot."""

    def __init__(self, service: str, logs: TenantLogs, interval: int = SNAPSHOT_INTERVAL) -> None:
        self.table = snapshots_table(service)
        self.logs = logs
        self.interval = interval
        self.codec = StateCodec(logs.catalogue)
        # The command path's decoding of stored events (upcast, typed fields).
        self.mapper = EnvelopeMapper(logs.catalogue)
        self._latest = f"""SELECT version, aggregate, recorded_until, state FROM {self.table}
            WHERE tenant_id = $1 AND aggregate_id = $2
              AND ($3::bigint IS NULL OR version <= $3)
              AND ($4::timestamptz IS NULL OR recorded_until <= $4)
            ORDER BY version DESC LIMIT 1"""
        self._insert = f"""INSERT INTO {self.table}
            (tenant_id, aggregate_id, version, aggregate, recorded_until, state)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"""

    async def fold(
        self,
        conn: DbConnection,
        tenant: str,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        until: datetime | None = None,
        use_snapshots: bool = True,
    ) -> Folded:
        """The record at `version`, or as of `until`: after its events in order up to the
        first that happened later (event time: the `timestamp` each event was recorded
        with), in the caller's transaction naming `tenant`."""
        aggregate: Any = None
        at, recorded_until = 0, None
        if use_snapshots:
            row = await conn.fetchrow(self._latest, tenant, aggregate_id, version, until)
            if row is not None:
                aggregate = self.codec.decode(row["aggregate"], row["state"])
                at, recorded_until = row["version"], row["recorded_until"]
        folded = 0
        batch = 2 * self.interval
        while True:
            limit = batch if version is None else min(batch, version - at)
            if limit <= 0:
                break
            rows = await self.logs.record_events(
                conn, tenant, aggregate_id, after_version=at, limit=limit
            )
            for event_version, topic, state in rows:
                event = self.mapper.to_domain_event(
                    StoredEvent(aggregate_id, event_version, topic, state)
                )
                stamp: datetime = event.timestamp
                if until is not None and stamp > until:
                    return Folded(aggregate, recorded_until, event, folded)
                aggregate = event.mutate(aggregate)
                at, folded = event_version, folded + 1
                recorded_until = stamp if recorded_until is None else max(recorded_until, stamp)
            if len(rows) < limit:
                break
        return Folded(aggregate, recorded_until, None, folded)

    async def take(self, conn: DbConnection, tenant: str, aggregate_id: UUID, version: int) -> None:
        """Store the record's snapshot at `version` (from its snapshot before)."""
        folded = await self.fold(conn, tenant, aggregate_id, version=version)
        aggregate = folded.aggregate
        if aggregate is None or aggregate.version != version or folded.recorded_until is None:
            return
        await conn.execute(
            self._insert,
            tenant,
            aggregate_id,
            version,
            self.logs.catalogue.aggregate_name(type(aggregate)),
            folded.recorded_until,
            self.codec.encode(aggregate),
        )


class SnapshotsProjection:
    """Takes a snapshot of a record at each multiple of the interval of its version."""

    name = "snapshots"

    def __init__(self, snapshots: Snapshots) -> None:
        self.snapshots = snapshots
        self.tables = (snapshots.table,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Every event of every record is counted."""

    @on.register
    async def _(
        self, event: AggregateRoot.Event, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        if envelope.aggregate_version % self.snapshots.interval == 0:
            await self.snapshots.take(
                conn, envelope.tenant, envelope.aggregate_id, envelope.aggregate_version
            )


def snapshots_table(service: str) -> str:
    return f"{service}.snapshots"


async def forget_snapshots(
    conn: DbConnection, service: str, tenant: str, aggregate_id: UUID
) -> None:
    """Drop every snapshot of one record (erasure of its personal data): in a transaction
    naming `tenant`."""
    await conn.execute(
        f"DELETE FROM {snapshots_table(service)} WHERE tenant_id = $1 AND aggregate_id = $2",
        tenant,
        aggregate_id,
    )
