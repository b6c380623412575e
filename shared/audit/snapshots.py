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

Personal data (`shared.personal`) is folded unopened: a personal value stays in the record
as its events store it, sealed under its subject's key (`SealedValue`, which reads as
withheld), and a snapshot stores that sealed form. No snapshot ever holds plaintext, and
erasing a subject (destroying its key) makes its values in every snapshot unreadable with
nothing to delete. The owning service's readers open them after folding (`open_personal`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic

from shared.db.pool import DbConnection
from shared.domain.aggregate import AggregateRoot
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantLogs
from shared.eventstore.stores import events_table, tenant_schema
from shared.personal.fields import WITHHELD, is_sealed
from shared.personal.keys import SubjectKeys
from shared.tenancy import province_codes

# Versions between two snapshots of a record: an as-of read folds at most this many events
# after its snapshot, half as many on average (bench/as_of.py measures the read with and
# without them). Each folded event costs about as much as reading a snapshot's state.
SNAPSHOT_INTERVAL = 20
# The library's bookkeeping that is no part of a record's state.
_NOT_STATE = {"_pending_events"}
# Events read per round trip where no later snapshot bounds the fold (a record's tail
# after its last snapshot, or a fold from its first event).
_BATCH = 200
_JSON_TYPES = (str, int, float, bool)
_TYPE, _VALUE, _ITEMS, _DICT, _SEALED = "$t", "$v", "$l", "$d", "$p"
# The state's format. Snapshots of format 1 (none) hold personal values as withheld text,
# which cannot be opened: they are not used (`mpks rebuild SERVICE snapshots` retakes them).
_FORMAT, _CURRENT_FORMAT = "$format", 2


class SealedValue(str):
    """A personal value as its event stores it (`shared.personal.fields.Sealed`), folded
    into a record unopened. It reads as `WITHHELD`, so a reader that may not open it (and
    any code that forgets to) sees no more than that."""

    field: str
    sealed: dict[str, str]

    def __new__(cls, field: str, sealed: Mapping[str, str]) -> SealedValue:
        value = super().__new__(cls, WITHHELD)
        # The field the value was sealed under (part of what opens it).
        value.field = field
        value.sealed = dict(sealed)
        return value


class _Stored(msgspec.Struct):
    """What folding needs of a stored event's state (its metadata is not decoded)."""

    v: int
    data: dict[str, Any]


class StateCodec:
    """A record's attributes to JSON and back, each value with its type."""

    def __init__(self, catalogue: EventCatalogue) -> None:
        self.catalogue = catalogue
        self._encoder = msgspec.json.Encoder()

    def encode(self, aggregate: AggregateRoot) -> bytes:
        state = {k: _tagged(v) for k, v in vars(aggregate).items() if k not in _NOT_STATE}
        return self._encoder.encode({**state, _FORMAT: _CURRENT_FORMAT})

    def decode(self, aggregate_name: str, state: bytes) -> AggregateRoot | None:
        """None: a snapshot of an earlier format."""
        values = msgspec.json.decode(state)
        if values.pop(_FORMAT, None) != _CURRENT_FORMAT:
            return None
        cls = self.catalogue.aggregate_class(aggregate_name)
        aggregate: AggregateRoot = object.__new__(cls)  # type: ignore[assignment]
        # As the library restores its own snapshots: the attributes, no __init__.
        aggregate.__dict__.update({k: _untagged(v) for k, v in values.items()})
        aggregate.__dict__["_pending_events"] = []
        return aggregate


def _tagged(value: Any) -> Any:
    if isinstance(value, SealedValue):
        return {_SEALED: value.field, _VALUE: value.sealed}
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
    if _SEALED in value:
        return SealedValue(value[_SEALED], value[_VALUE])
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


async def open_personal(
    conn: DbConnection, aggregate: AggregateRoot, tenant: str, keys: SubjectKeys | None
) -> None:
    """Open the record's personal values in place with the owning service's `keys` (an
    erased subject's read as `ERASED`, as its projections show them); without keys, each
    becomes plain `WITHHELD` text."""
    sealed = [v for value in vars(aggregate).values() for v in _sealed_in(value)]
    if not sealed:
        return
    if keys is not None:
        await keys.load(conn, tenant, {str(v.sealed.get("subject")) for v in sealed})

    def reveal(value: SealedValue) -> Any:
        return WITHHELD if keys is None else keys.open(tenant, value.field, value.sealed)

    for name, value in list(vars(aggregate).items()):
        aggregate.__dict__[name] = _revealed(value, reveal)


# The containers a record's values may hold personal values in (as the codec stores them).
_CONTAINERS = (list, tuple, set, frozenset)


def _sealed_in(value: Any) -> Iterator[SealedValue]:
    if isinstance(value, SealedValue):
        yield value
    elif type(value) is dict:
        for item in value.values():
            yield from _sealed_in(item)
    elif type(value) in _CONTAINERS:
        for item in value:
            yield from _sealed_in(item)


def _revealed(value: Any, reveal: Callable[[SealedValue], Any]) -> Any:
    if isinstance(value, SealedValue):
        return reveal(value)
    if type(value) is dict:
        return {k: _revealed(v, reveal) for k, v in value.items()}
    if type(value) in _CONTAINERS:
        return type(value)(_revealed(v, reveal) for v in value)
    return value


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
        self.service = service
        self.table = snapshots_table(service)
        self.logs = logs
        self.catalogue = logs.catalogue
        self.interval = interval
        self.codec = StateCodec(logs.catalogue)
        self._insert = f"""INSERT INTO {self.table}
            (tenant_id, aggregate_id, version, aggregate, recorded_until, state)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"""
        self._start: dict[str, str] = {}

    def _start_query(self, tenant: str) -> str:
        """One round trip to start a fold: the latest usable snapshot (a row with its
        `recorded_until`, if any), then the record's events after it, up to the next
        snapshot: that one was recorded after the moment (or is past the version), so the
        fold ends within them. Both by primary key or index."""
        query = self._start.get(tenant)
        if query is None:
            if tenant not in province_codes():
                raise KeyError(f"unknown tenant {tenant!r}")
            events = f"{tenant_schema(self.service, tenant)}.{events_table(self.service)}"
            query = f"""
                WITH snapshot AS MATERIALIZED (
                    SELECT version, aggregate, recorded_until, state FROM {self.table}
                    WHERE $6 AND tenant_id = $1 AND aggregate_id = $2
                      AND ($3::bigint IS NULL OR version <= $3)
                      AND ($4::timestamptz IS NULL OR recorded_until <= $4)
                    ORDER BY version DESC LIMIT 1
                ), bounds AS MATERIALIZED (
                    SELECT start, least($3::bigint, (
                        SELECT min(version) FROM {self.table}
                        WHERE $6 AND tenant_id = $1 AND aggregate_id = $2 AND version > start
                    )) AS stop
                    FROM (SELECT coalesce((SELECT version FROM snapshot), 0) AS start) s
                )
                SELECT 0 AS part, version, aggregate AS topic, state, recorded_until
                FROM snapshot
                UNION ALL (
                    SELECT 1, originator_version, topic, state, NULL FROM {events}
                    WHERE originator_id = $2
                      AND originator_version > (SELECT start FROM bounds)
                      AND originator_version <= coalesce(
                          (SELECT stop FROM bounds), 9223372036854775807)
                    ORDER BY originator_version LIMIT $5)
                ORDER BY part, version"""
            self._start[tenant] = query
        return query

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
        with), in the caller's transaction naming `tenant`. Personal values stay sealed
        (`open_personal` opens them)."""
        aggregate: Any = None
        at, recorded_until = 0, None
        batch = _BATCH
        rows = await conn.fetch(
            self._start_query(tenant), tenant, aggregate_id, version, until, batch, use_snapshots
        )
        if rows and rows[0]["part"] == 0:
            snapshot, rows = rows[0], rows[1:]
            aggregate = self.codec.decode(snapshot["topic"], snapshot["state"])
            if aggregate is None:
                # Of an earlier format: from the first event instead.
                return await self.fold(
                    conn, tenant, aggregate_id, version=version, until=until, use_snapshots=False
                )
            at, recorded_until = snapshot["version"], snapshot["recorded_until"]
        events: list[tuple[int, str, bytes]] = [
            (r["version"], r["topic"], r["state"]) for r in rows
        ]
        folded = 0
        while True:
            for event_version, topic, state in events:
                stored = msgspec.json.decode(state, type=_Stored)
                stamp = msgspec.convert(stored.data["timestamp"], datetime, strict=False)
                event = self._event(aggregate_id, event_version, topic, stored, stamp)
                if until is not None and stamp > until:
                    return Folded(aggregate, recorded_until, event, folded)
                aggregate = event.mutate(aggregate)
                at, folded = event_version, folded + 1
                recorded_until = stamp if recorded_until is None else max(recorded_until, stamp)
            # Fewer events than asked for: the record's last one, or the next snapshot's
            # version (past the moment or the version), was reached.
            if len(events) < batch or (version is not None and at >= version):
                break
            limit = batch if version is None else min(batch, version - at)
            events = [
                (r[0], r[1], r[2])
                for r in await self.logs.record_events(
                    conn, tenant, aggregate_id, after_version=at, limit=limit
                )
            ]
        return Folded(aggregate, recorded_until, None, folded)

    def _event(
        self, aggregate_id: UUID, version: int, topic: str, stored: _Stored, stamp: datetime
    ) -> Any:
        """The domain event, upcast and typed as the command path reads it, with its
        personal values left sealed (`SealedValue`)."""
        current, data = self.catalogue.upcast(topic, stored.v, stored.data)
        data.pop("timestamp")
        data.pop("originator_topic", None)
        personal = self.catalogue.personal_of(self.catalogue.class_of(topic))
        sealed = {k: data[k] for k in personal if is_sealed(data.get(k))}
        event = self.catalogue.decode(
            topic,
            current,
            data,
            originator_id=aggregate_id,
            originator_version=version,
            timestamp=stamp,
        )
        for field, value in sealed.items():
            # The catalogue gives a reader without keys WITHHELD here; folding keeps what
            # opens it.
            vars(event)[field] = SealedValue(field, value)
        return event

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
