"""Governance read models: who serves an institution (one row per appointment, with the
officer's name, NIK and phone: personal data, blanked in place when the officer, a data
subject, is erased) and its governance timeline (every event of the institution in log
order: status changes, appointments and dismissals, profile changes). One projection writes
both, so an appointment finds its institution's PDM in the same transaction; the queries
that read them are here too.

The timeline keeps no personal data: an officer's name is joined from the officers at read,
so an erasure blanks it in both."""

from __future__ import annotations

from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec

from services.registry.domain.institution import Institution
from services.registry.domain.officers import OfficerRole
from shared.db.pool import DbConnection
from shared.domain.errors import NotFound
from shared.domain.messages import Message, record_name
from shared.eventstore.envelope import EventEnvelope
from shared.personal.erasure import DataSubject
from shared.personal.fields import ERASED, personal_fields
from shared.projections.queries import Query

OFFICERS = "registry.officers"
TIMELINE = "registry.governance_timeline"


class OfficerView(msgspec.Struct):
    id: UUID
    institution_id: UUID
    role: OfficerRole
    full_name: str
    nik: str
    phone: str | None
    term_start: date
    term_end: date
    dismissed_on: date | None
    # Serving today: the term has begun, has not ended, and no dismissal took effect.
    serving: bool
    appointed_at: datetime


class TimelineEntry(msgspec.Struct):
    position: int
    version: int
    occurred_at: datetime
    event: str
    actor: str
    reason: str | None
    # The event's own fields, personal ones left out.
    details: dict[str, Any]
    officer_id: UUID | None
    # The officer's name as the officers read model has it now (erased: "[erased]").
    officer_name: str | None


class Timeline(msgspec.Struct):
    institution_id: UUID
    # The institution's version (its latest event): the ETag of the timeline.
    version: int
    entries: list[TimelineEntry]


_SERVING = """(term_start <= current_date AND current_date <= term_end
               AND (dismissed_on IS NULL OR current_date < dismissed_on)) AS serving"""
_OFFICER_COLUMNS = ", ".join(
    _SERVING if f == "serving" else f for f in OfficerView.__struct_fields__
)
_OFFICERS_OF = Query(
    OfficerView,
    f"""SELECT {_OFFICER_COLUMNS} FROM {OFFICERS}
        WHERE institution_id = $1 AND ($2::text IS NULL OR role = $2)
        ORDER BY term_start DESC, appointed_at DESC, id LIMIT $3 OFFSET $4""",
)
_TIMELINE = f"""SELECT t.position, t.version, t.occurred_at, t.event, t.actor, t.reason,
                       t.details, t.officer_id, o.full_name AS officer_name
                FROM {TIMELINE} t
                LEFT JOIN {OFFICERS} o ON o.tenant_id = t.tenant_id AND o.id = t.officer_id
                WHERE t.institution_id = $1 ORDER BY t.position LIMIT $2 OFFSET $3"""
_LATEST = f"""SELECT max(version) FROM {TIMELINE} WHERE institution_id = $1"""
_json = msgspec.json.Decoder(dict[str, Any])


async def officers_of(
    conn: DbConnection,
    institution_id: UUID,
    *,
    role: OfficerRole | None,
    limit: int,
    offset: int,
) -> list[OfficerView]:
    """The institution's appointments, the latest term first; no such institution (in the
    reader's scope) is not found, as for a read of it."""
    if await conn.fetchval(_LATEST, institution_id) is None:
        raise NotFound(
            Message("{record} not found", record=record_name("institution", institution_id))
        )
    return await _OFFICERS_OF.all(conn, institution_id, role, limit, offset)


async def timeline_of(
    conn: DbConnection, institution_id: UUID, *, limit: int, offset: int
) -> Timeline | None:
    """The institution's governance events, oldest first; None if no such institution
    (in the reader's scope)."""
    version = await conn.fetchval(_LATEST, institution_id)
    if version is None:
        return None
    rows = await conn.fetch(_TIMELINE, institution_id, limit, offset)
    return Timeline(
        institution_id=institution_id,
        version=version,
        entries=[TimelineEntry(**{**dict(r), "details": _json.decode(r["details"])}) for r in rows],
    )


# Fields every event has: they are the envelope's, not the event's details.
_ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp"}
)


# Per event class: the fields its timeline line leaves out.
_KEPT_OUT: dict[type[Any], frozenset[str]] = {}


def _details(event: Any) -> bytes:
    cls = type(event)
    kept_out = _KEPT_OUT.get(cls)
    if kept_out is None:
        kept_out = _KEPT_OUT[cls] = _ENVELOPE_FIELDS | personal_fields(cls).keys()
    return msgspec.json.encode({k: v for k, v in vars(event).items() if k not in kept_out})


class GovernanceProjection:
    name = "governance"
    tables = (OFFICERS, TIMELINE)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: Institution.Event, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _record(conn, envelope, event)

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _record(conn, envelope, event, pdm=event.pdm)

    @on.register
    async def _(
        self, event: Institution.OfficerAppointed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _record(conn, envelope, event, officer_id=event.officer_id)
        await conn.execute(
            f"""INSERT INTO {OFFICERS}
                  (tenant_id, id, institution_id, pdm, role, full_name, nik, phone,
                   term_start, term_end, appointed_at)
                SELECT $1, $2, $3, pdm, $4, $5, $6, $7, $8, $9, $10
                FROM {TIMELINE} WHERE tenant_id = $1 AND position = $11
                ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            event.officer_id,
            envelope.aggregate_id,
            event.role,
            event.full_name,
            event.nik,
            event.phone,
            event.term_start,
            event.term_end,
            envelope.occurred_at,
            envelope.position,
        )

    @on.register
    async def _(
        self, event: Institution.OfficerDismissed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _record(conn, envelope, event, officer_id=event.officer_id)
        await conn.execute(
            f"UPDATE {OFFICERS} SET dismissed_on = $3 WHERE tenant_id = $1 AND id = $2",
            envelope.tenant,
            event.officer_id,
            event.dismissed_on,
        )

    @on.register
    async def _(
        self, event: DataSubject.Erased, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # An officer is the subject of their own name, NIK and phone.
        await conn.execute(
            f"""UPDATE {OFFICERS}
                SET full_name = $3, nik = $3,
                    phone = CASE WHEN phone IS NULL THEN NULL ELSE $3 END
                WHERE tenant_id = $1 AND id = $2""",
            envelope.tenant,
            event.subject,
            ERASED,
        )


async def _record(
    conn: DbConnection,
    envelope: EventEnvelope,
    event: Any,
    *,
    pdm: str | None = None,
    officer_id: UUID | None = None,
) -> None:
    """The event's line in its institution's timeline; its PDM from the registration (the
    institution's first line), unless given."""
    await conn.execute(
        f"""INSERT INTO {TIMELINE}
              (tenant_id, position, institution_id, pdm, version, occurred_at, event, actor,
               reason, officer_id, details)
            SELECT $1, $2, $3, coalesce($4, (SELECT pdm FROM {TIMELINE}
                     WHERE tenant_id = $1 AND institution_id = $3 ORDER BY position LIMIT 1)),
                   $5, $6, $7, $8, $9, $10, $11
            ON CONFLICT (tenant_id, position) DO NOTHING""",
        envelope.tenant,
        envelope.position,
        envelope.aggregate_id,
        pdm,
        envelope.aggregate_version,
        envelope.occurred_at,
        envelope.event,
        envelope.meta.actor,
        envelope.meta.reason,
        officer_id,
        _details(event).decode(),
    )
