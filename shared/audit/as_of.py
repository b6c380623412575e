"""Any record as of any moment: the state the write side had then, with the version it had.

The state is folded through the record's aggregate (as its history is) from its latest
snapshot before that moment (`shared.audit.snapshots`), event by event up to the last one
recorded at or before it. Event time is the `timestamp` each event was recorded with.

Personal values show as the owning service's current reads show them: open with its subject
keys (`ERASED` once the subject is erased), withheld for a reader without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from shared.audit.history import record_fields
from shared.audit.snapshots import Snapshots, open_personal
from shared.db.pool import DbConnection
from shared.domain.aggregate import AggregateRoot
from shared.personal.keys import SubjectKeys


class RecordAsOf(msgspec.Struct, frozen=True):
    """A record as it stood at `as_of`: its fields then (named as in its history), the
    version it had and when that version was recorded."""

    id: UUID
    aggregate: str
    as_of: datetime
    version: int
    created_at: datetime
    changed_at: datetime
    state: dict[str, Any]


@dataclass(frozen=True)
class Past:
    """What the log says of a record at a moment."""

    aggregate_name: str
    # Where the record sits (its scope then; for a record created later, at its creation).
    aggregate: AggregateRoot
    # None: the record was created after the moment, at `created_at`.
    record: RecordAsOf | None
    created_at: datetime


async def record_as_of(
    conn: DbConnection,
    snapshots: Snapshots,
    tenant: str,
    aggregate_id: UUID,
    when: datetime,
    *,
    keys: SubjectKeys | None = None,
    use_snapshots: bool = True,
) -> Past | None:
    """None: no record with that id in the tenant's log. With the service's `keys`, its
    personal values show open (or erased); without, withheld."""
    folded = await snapshots.fold(
        conn, tenant, aggregate_id, until=when, use_snapshots=use_snapshots
    )
    catalogue = snapshots.logs.catalogue
    aggregate = folded.aggregate
    if aggregate is None:
        if folded.next_event is None:
            return None
        created: Any = folded.next_event.mutate(None)
        assert isinstance(created, AggregateRoot)
        return Past(catalogue.aggregate_name(type(created)), created, None, created.created_on)
    name = catalogue.aggregate_name(type(aggregate))
    await open_personal(conn, aggregate, tenant, keys)
    return Past(
        name,
        aggregate,
        RecordAsOf(
            id=aggregate_id,
            aggregate=name,
            as_of=when,
            version=aggregate.version,
            created_at=aggregate.created_on,
            changed_at=aggregate.modified_on,
            state=record_fields(aggregate),
        ),
        aggregate.created_on,
    )
