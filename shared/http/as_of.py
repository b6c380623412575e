"""`?as_of=` on the reads of a service: one record as the write side had it at a moment
(`GET …/{id}?as_of=2026-03-01T00:00:00+07:00`, from its events) and lists as their
read models had them (temporal read models, `shared.projections.temporal`).

A moment needs its UTC offset: Indonesia spans three time zones (WIB +07:00, WITA +08:00,
WIT +09:00), so a bare local time would name three different moments. A value that is not
an RFC 3339 date-time with an offset is refused (422) naming `as_of`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Response
from litestar.params import Parameter

from shared.audit.as_of import record_as_of
from shared.audit.snapshots import Snapshots
from shared.db.pool import DbPool, tenant_transaction
from shared.domain.errors import InvalidInput, NotFound
from shared.domain.messages import Message, record_name
from shared.domain.organisation import Scope
from shared.http.access import shown
from shared.personal.keys import SubjectKeys
from shared.resilience.faults import CONNECTION_WAIT_SECONDS
from shared.service_layer.ports import Clock
from shared.tenancy.provinces import local_date

AS_OF = "as_of"

# RFC 3339 with its offset. Taken as text and parsed here: Litestar's lenient conversion
# would read a bare number as seconds since 1970 (`as_of=0.5`).
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"

AsOf = Annotated[
    str | None,
    Parameter(
        description="A past moment, RFC 3339 with its UTC offset (e.g. "
        "`2026-03-01T00:00:00+07:00`): the answer as it was then",
        pattern=_RFC3339,
        schema_extra={"format": "date-time"},
    ),
]


def moment(as_of: str | None) -> datetime | None:
    """`as_of` as a moment: a real date and time, with its UTC offset."""
    if as_of is None:
        return None
    try:
        when = datetime.fromisoformat(as_of)
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise InvalidInput(
            Message(
                "{field} must be a date and time with its UTC offset (e.g. {example}): a "
                "local time names a different moment in each time zone",
                field=AS_OF,
                example="2026-03-01T00:00:00+07:00",
            ),
            field=AS_OF,
            source="query",
        )
    return when


def day_of(tenant: str, clock: Clock, as_of: datetime | None) -> date:
    """The province's day a list is of: today there, or the day `as_of` falls on there (a
    licence valid until 31 March holds all that day in Papua as in Aceh)."""
    return clock.today(tenant) if as_of is None else local_date(tenant, as_of)


def aggregate_noun(aggregate: str) -> str:
    """`SocialWorker` -> `social worker`: how messages name its records."""
    return aggregate[0].lower() + "".join(
        f" {c.lower()}" if c.isupper() else c for c in aggregate[1:]
    )


class PastRecords:
    """Records of a service as of a moment, under the reader's tenant and scope, with
    their personal values as the service's current reads show them (its `keys`)."""

    def __init__(self, db: DbPool, snapshots: Snapshots, keys: SubjectKeys) -> None:
        self.db = db
        self.snapshots = snapshots
        self.keys = keys

    async def read(
        self, tenant: str, scope: Scope, aggregate: str, record_id: UUID, as_of: str
    ) -> Response[Any]:
        """A `RecordAsOf`, for a record route that answers its read model's view or this
        (`Response[View | RecordAsOf]`)."""
        when = moment(as_of)
        assert when is not None
        async with tenant_transaction(self.db, tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
            past = await record_as_of(conn, self.snapshots, tenant, record_id, when, keys=self.keys)
        what = record_name(aggregate_noun(aggregate), record_id)
        # Outside the caller's scope is the same answer as no such record, as for reads.
        if (
            past is None
            or past.aggregate_name != aggregate
            or not scope.covers(past.aggregate.scope)
        ):
            raise NotFound(Message("{record} not found", record=what))
        if past.record is None:
            raise NotFound(
                Message(
                    "{record} did not exist yet at {as_of}: it was created at {created_at}",
                    record=what,
                    as_of=when.isoformat(),
                    created_at=past.created_at.isoformat(),
                ),
                field=AS_OF,
                source="query",
            )
        # A restricted record as it was is recorded as read, as the record now is.
        shown(past.aggregate)
        return Response(past.record)
