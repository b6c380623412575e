"""The accreditation register: one row per institution assessed — its current decision —
and every earlier version with the period it was valid (the register as of any date); the
counts per grade (of a province, or of every province for the national council); and the
projection that writes it, which also sets each accreditation's expiry deadline
(`shared.scheduling`): when the day after its valid-until begins in the province, the
scheduler issues `ExpireAccreditation` once. A newer decision replaces that deadline, a
revocation or a not-accredited decision cancels it, the expiry itself removes it.

The register shows each institution's name and type from the directory (the institutions
read model): its current row, or, as of a date, its version valid at that moment, so an
institution renamed since shows the name it had then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from functools import singledispatchmethod
from typing import Annotated
from uuid import UUID

import msgspec
from litestar.params import Parameter

from services.registry.application.expire_accreditation import ExpireAccreditation
from services.registry.domain.accreditation import (
    Accreditation,
    AccreditationStatus,
    Grade,
    Scores,
)
from services.registry.domain.institution import InstitutionType
from services.registry.projections.institutions import DIRECTORY
from shared.db.pool import DbConnection
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query
from shared.projections.temporal import TemporalTable
from shared.scheduling.deadlines import Deadlines
from shared.tenancy.provinces import province_timezone

TABLE = "registry.accreditations"


def expiry_moment(tenant: str, valid_until: date) -> datetime:
    """When an accreditation valid until `valid_until` ends: the next midnight in the
    province."""
    local = province_timezone(tenant)
    return datetime.combine(valid_until + timedelta(days=1), time(), local).astimezone(UTC)


class AccreditationView(msgspec.Struct):
    id: UUID
    institution_id: UUID
    institution_name: str | None
    kind: InstitutionType | None
    pdm: str
    status: AccreditationStatus
    grade: Grade
    programme: int
    human_resources: int
    management: int
    facilities: int
    service_results: int
    decided_on: date
    certificate_number: str | None
    regulation: str
    valid_until: date | None
    version: int
    updated_at: datetime


class RegisterFilters(msgspec.Struct, kw_only=True, frozen=True):
    """The register's filters: query parameters of its list and of its downloads."""

    status: AccreditationStatus | None = None
    grade: Grade | None = None
    kind: Annotated[
        InstitutionType | None, Parameter(description="only institutions of this type, e.g. lksa")
    ] = None
    pdm: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None
    expiring_within: Annotated[
        int | None,
        Parameter(
            ge=0,
            le=3660,
            description="only accreditations in force that end within this many days from "
            "today (or from the day of `as_of`)",
        ),
    ] = None


_OWN = [
    "tenant_id",
    "id",
    "institution_id",
    "pdm",
    "status",
    "grade",
    *Scores.__struct_fields__,
    "decided_on",
    "certificate_number",
    "regulation",
    "valid_until",
    "version",
    "updated_at",
]
REGISTER = TemporalTable(TABLE, _OWN)
_VIEW = ", ".join(
    f"a.{c}" for c in AccreditationView.__struct_fields__ if c not in ("institution_name", "kind")
)
_FILTERS = """($1::text IS NULL OR a.status = $1) AND ($2::text IS NULL OR a.grade = $2)
          AND ($3::text IS NULL OR a.pdm = $3) AND ($4::text IS NULL OR i.kind = $4)
          AND ($5::date IS NULL OR a.valid_until <= $5)"""
# The institution's name and type: now, or in its version valid at the moment ($8) the
# register is read as of.
_JOIN = f"""LEFT JOIN {DIRECTORY.table} i
    ON i.tenant_id = a.tenant_id AND i.id = a.institution_id"""
_JOIN_AS_OF = f"""LEFT JOIN {DIRECTORY.history} i
    ON i.tenant_id = a.tenant_id AND i.id = a.institution_id AND {DIRECTORY.valid_at("$8", "i")}"""
_LIST = Query(
    AccreditationView,
    f"""SELECT {_VIEW}, i.name AS institution_name, i.kind FROM {TABLE} a {_JOIN}
        WHERE a.status IS NOT NULL AND {_FILTERS}
        ORDER BY a.valid_until NULLS LAST, i.name, a.id LIMIT $6 OFFSET $7""",
)
_LIST_AS_OF = Query(
    AccreditationView,
    f"""SELECT {_VIEW}, i.name AS institution_name, i.kind
        FROM {REGISTER.history} a {_JOIN_AS_OF}
        WHERE {REGISTER.valid_at("$8", "a")} AND a.status IS NOT NULL AND {_FILTERS}
        ORDER BY a.valid_until NULLS LAST, i.name, a.id LIMIT $6 OFFSET $7""",
)
_OF_INSTITUTION = Query(
    AccreditationView,
    f"""SELECT {_VIEW}, i.name AS institution_name, i.kind FROM {TABLE} a {_JOIN}
        WHERE a.institution_id = $1 AND a.status IS NOT NULL""",
)


def _arguments(filters: RegisterFilters, day: date) -> tuple[object, ...]:
    """The list's first five parameters; `expiring_within` N: those in force ending by
    `day` + N days."""
    if filters.expiring_within is None:
        return (filters.status, filters.grade, filters.pdm, filters.kind, None)
    until = day + timedelta(days=filters.expiring_within)
    return (AccreditationStatus.ACCREDITED, filters.grade, filters.pdm, filters.kind, until)


async def list_accreditations(
    conn: DbConnection,
    filters: RegisterFilters,
    *,
    day: date,
    limit: int,
    offset: int,
    as_of: datetime | None = None,
) -> list[AccreditationView]:
    """The register now, or as it was at `as_of`; `day`: the province's day the list is
    of (today, or the day of `as_of`), from which `expiring_within` counts."""
    args = (*_arguments(filters, day), limit, offset)
    if as_of is None:
        return await _LIST.all(conn, *args)
    return await _LIST_AS_OF.all(conn, *args, as_of)


def register_rows(
    conn: DbConnection,
    filters: RegisterFilters,
    *,
    day: date,
    as_of: datetime | None = None,
    scope: Scope = PROVINCE,
) -> AsyncIterator[AccreditationView]:
    """Every row of the list (a download), through a cursor; no limit (`LIMIT NULL`). A
    reader of one PDM is narrowed to it in the query too (row-level security does it in any
    case), where the register's PDM column answers it."""
    if filters.pdm is None and scope.pdm is not None:
        filters = msgspec.structs.replace(filters, pdm=scope.pdm)
    args = (*_arguments(filters, day), None, 0)
    if as_of is None:
        return _LIST.rows(conn, *args)
    return _LIST_AS_OF.rows(conn, *args, as_of)


async def accreditation_of(conn: DbConnection, institution_id: UUID) -> AccreditationView | None:
    return await _OF_INSTITUTION.one(conn, institution_id)


class AccreditationProjection:
    name = "accreditations"
    tables = REGISTER.tables

    def __init__(self) -> None:
        self.deadlines = Deadlines("registry")

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(
        self, event: Accreditation.Opened, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # No decision yet (none shows): the decision recorded with it follows at once.
        await REGISTER.insert(
            conn,
            envelope,
            {
                "institution_id": event.institution_id,
                "pdm": event.pdm,
                "updated_at": envelope.occurred_at,
            },
        )

    @on.register
    async def _(
        self, event: Accreditation.Granted, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _decided(conn, envelope, event.scores, grade=event.grade, **_granted(event))
        await self.deadlines.set(
            conn,
            envelope,
            _expiry_key(event.institution_id),
            expiry_moment(envelope.tenant, event.valid_until),
            ExpireAccreditation(institution_id=event.institution_id, decision_id=event.decision_id),
        )

    @on.register
    async def _(
        self, event: Accreditation.Refused, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _decided(
            conn,
            envelope,
            event.scores,
            grade=Grade.NOT_ACCREDITED,
            status=AccreditationStatus.NOT_ACCREDITED,
            decided_on=event.decided_on,
            certificate_number=None,
            regulation=event.regulation,
            valid_until=None,
        )
        await self.deadlines.cancel(conn, envelope, _expiry_key(event.institution_id))

    @on.register
    async def _(
        self, event: Accreditation.Revoked, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=AccreditationStatus.REVOKED)
        await self.deadlines.cancel(conn, envelope, _expiry_key(event.institution_id))

    @on.register
    async def _(
        self, event: Accreditation.Expired, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=AccreditationStatus.EXPIRED)
        await self.deadlines.cancel(conn, envelope, _expiry_key(event.institution_id))


def _expiry_key(institution_id: UUID) -> str:
    return f"accreditation-expiry:{institution_id}"


def _granted(event: Accreditation.Granted) -> dict[str, object]:
    return {
        "status": AccreditationStatus.ACCREDITED,
        "decided_on": event.decided_on,
        "certificate_number": event.certificate_number,
        "regulation": event.regulation,
        "valid_until": event.valid_until,
    }


async def _decided(
    conn: DbConnection, envelope: EventEnvelope, scores: Scores, **changes: object
) -> None:
    await _update(conn, envelope, **msgspec.structs.asdict(scores), **changes)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: object) -> None:
    await REGISTER.update(conn, envelope, {"updated_at": envelope.occurred_at, **changes})
