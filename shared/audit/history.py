"""The history of one record: every event of it in order, with who, when, why, the event's
name and version, and the value of each field the event changed before and after it.

The values come from the record itself, replayed event by event through its aggregate (the
same code that decides commands), so the history shows exactly what the write side saw —
for every aggregate of every service, with no per-service code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from shared.db.pool import DbConnection
from shared.domain.aggregate import AggregateRoot
from shared.eventstore.envelope import EventEnvelope
from shared.eventstore.logs import TenantLogs
from shared.personal.keys import SubjectKeys
from shared.projections.dispatch import typed


class FieldChange(msgspec.Struct, frozen=True):
    field: str
    before: Any
    after: Any


class HistoryEntry(msgspec.Struct, frozen=True):
    position: int
    version: int
    event: str
    event_version: int
    occurred_at: datetime
    actor: str
    reason: str | None
    correlation_id: str
    causation_id: str | None
    changes: list[FieldChange]


class RecordHistory(msgspec.Struct, frozen=True):
    id: UUID
    aggregate: str
    version: int
    entries: list[HistoryEntry]


class History:
    """A record's history and its state now, as the write side knows them."""

    def __init__(self, aggregate: AggregateRoot, record: RecordHistory) -> None:
        self.aggregate = aggregate
        self.record = record


async def history_of(
    conn: DbConnection,
    logs: TenantLogs,
    tenant: str,
    aggregate_id: UUID,
    keys: SubjectKeys | None = None,
) -> History | None:
    """None: no record with that id in the tenant's log. With the service's `keys`, its
    personal values show open (or erased); without, withheld."""
    envelopes = await logs.of_record(conn, tenant, aggregate_id)
    if not envelopes:
        return None
    if keys is not None:
        envelopes = await keys.reveal(conn, tenant, envelopes)
    aggregate: Any = None
    entries: list[HistoryEntry] = []
    for envelope in envelopes:
        before = record_fields(aggregate)
        aggregate = typed(logs.catalogue, envelope).mutate(aggregate)
        after = record_fields(aggregate)
        entries.append(_entry(envelope, before, after))
    assert isinstance(aggregate, AggregateRoot)
    return History(
        aggregate,
        RecordHistory(
            id=aggregate_id,
            aggregate=envelopes[0].aggregate,
            version=aggregate.version,
            entries=entries,
        ),
    )


def record_fields(aggregate: object) -> dict[str, Any]:
    """The record's own fields (the library keeps its bookkeeping in `_`-names), as JSON
    values."""
    if aggregate is None:
        return {}
    return {
        name: msgspec.to_builtins(value)
        for name, value in vars(aggregate).items()
        if not name.startswith("_")
    }


def _entry(envelope: EventEnvelope, before: dict[str, Any], after: dict[str, Any]) -> HistoryEntry:
    changes = [
        FieldChange(name, before.get(name), after.get(name))
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
    return HistoryEntry(
        position=envelope.position,
        version=envelope.aggregate_version,
        event=envelope.event,
        event_version=envelope.event_version,
        occurred_at=envelope.occurred_at,
        actor=envelope.meta.actor,
        reason=envelope.meta.reason,
        correlation_id=envelope.meta.correlation_id,
        causation_id=envelope.meta.causation_id,
        changes=changes,
    )
