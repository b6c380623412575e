"""Institutions read model: one row per institution, its current state and version, and
every earlier version with the period it was valid (the directory as of any date); the
projection that writes it and the queries that read it.

The row also shows the institution's accreditation (`grade`: the grade in force or why
there is none, and its valid-until) and its operating licence, so the directory filters on
them. Columns of this row, written by this projection from the Accreditation and Licence
events (`TemporalTable.follow`: a new version in the row's history at the event's time,
the row's `version` still the institution's), rather than a join at read time with the
register's and the licences' tables: the list, and the list as of a date, stay one query
on one table (its history table for `as_of`, with its period index), each filter a column
of it with its index, and each read model keeps to its own tables. As of a date, a join of
three history tables would have to match each row's period in each. A licence's state on a
day (valid, expiring, expired) is not an event: it is computed when read, from the stored
status and valid-until and the day the list is of (`Listing.derived`)."""

from __future__ import annotations

from datetime import date, datetime
from functools import singledispatchmethod
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar.params import Parameter

from services.registry.domain.accreditation import Accreditation, Grade, Standing
from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from services.registry.domain.licence import (
    EXPIRING_WITHIN_DAYS,
    Licence,
    LicenceKind,
    LicenceState,
    LicenceStatus,
)
from shared.db.pool import DbConnection
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.envelope import EventEnvelope
from shared.projections.listing import Listing, Page, SearchText, searchable
from shared.projections.queries import Query
from shared.projections.temporal import TemporalTable

TABLE = "registry.institutions"


class _Searched(msgspec.Struct):
    """What the search column is made of."""

    name: str
    address: str | None


class InstitutionView(msgspec.Struct):
    id: UUID
    name: str
    kind: InstitutionType
    owner: Owner
    pdm: str
    address: str | None
    # The branch (PCM, or PCA for 'Aisyiyah) it sits under; None: directly under its PDM.
    unit: str | None
    status: InstitutionStatus
    # The accreditation: the grade in force, or why there is none; the valid-until of the
    # decision shown (also when it expired or was revoked).
    grade: Standing
    accredited_until: date | None
    # The operating licence (Izin Operasional) on the day the list is of.
    licence: LicenceState
    licence_valid_until: date | None
    version: int
    registered_at: datetime
    updated_at: datetime


class PublicInstitutionFilters(msgspec.Struct, kw_only=True, frozen=True):
    """The directory's filters: each field a query parameter and, by its name, the column
    it matches (`shared.projections.listing`); a new filter on a column is one field.
    Anyone may use these (the public directory)."""

    status: InstitutionStatus | None = None
    kind: InstitutionType | None = None
    pdm: Annotated[str | None, Parameter(pattern=r"^\d{4}$")] = None
    unit: Annotated[
        str | None,
        Parameter(pattern=r"^\d{6}$", description="the branch (PCM or PCA) by its code"),
    ] = None
    grade: Standing | None = None
    q: SearchText = None


class InstitutionFilters(PublicInstitutionFilters, kw_only=True, frozen=True):
    """The filters of the directory for its readers: also the licence's state, which
    changes with the day, not with an event — the public directory's cache follows events
    only, so it does not offer it."""

    licence: Annotated[
        LicenceState | None,
        Parameter(
            description=f"the operating licence today (or at `as_of`): `expiring` ends "
            f"within {EXPIRING_WITHIN_DAYS} days, `valid` later or never"
        ),
    ] = None


class PublicInstitution(msgspec.Struct):
    """What anyone may see of an institution (seed 002: institution data open to the
    public). The allow-list: only these columns are selected, never the officers or any
    other personal data.

    Its accreditation: `grade` is the grade in force (`A`, `B`, `C`) or why there is none
    (`expired`, `revoked`, `not_accredited`, `never_assessed`); `accredited_until` is the
    end of the accreditation in force, and null whenever none is in force."""

    id: UUID
    name: str
    kind: InstitutionType
    owner: Owner
    pdm: str
    address: str | None
    status: InstitutionStatus
    # Public by law and by seed 002: the board's grade and until when it holds.
    grade: Standing
    accredited_until: Annotated[
        date | None,
        msgspec.Meta(
            description="until when the accreditation in force holds; null when none is "
            "(`grade` says why: a revoked or expired accreditation's date is not shown)"
        ),
    ]

    def __post_init__(self) -> None:
        # The directory keeps a revoked or expired decision's valid-until for its staff,
        # beside the standing; a citizen seeing a date to come would take the
        # accreditation for one still in force. (A row gives the grade as its text.)
        if not Standing(self.grade).in_force:
            self.accredited_until = None


def _licence_state(day: str) -> str:
    """The operating licence's state on `day` (an SQL date), from the stored columns."""
    return f"""CASE WHEN licence_status IS NULL THEN '{LicenceState.MISSING}'
        WHEN licence_status = '{LicenceStatus.REVOKED}' THEN '{LicenceState.REVOKED}'
        WHEN licence_valid_until < {day} THEN '{LicenceState.EXPIRED}'
        WHEN licence_valid_until <= {day} + {EXPIRING_WITHIN_DAYS} THEN '{LicenceState.EXPIRING}'
        ELSE '{LicenceState.VALID}' END"""


_DERIVED = {"licence": _licence_state}
_STORED = [c for c in InstitutionView.__struct_fields__ if c not in _DERIVED]
DIRECTORY = TemporalTable(TABLE, ["tenant_id", *_STORED, "search", "licence_id", "licence_status"])
# In the order of the index `institutions_by_name` (migration 010), which a page of the
# whole directory walks.
INSTITUTIONS = Listing(
    InstitutionView,
    DIRECTORY,
    InstitutionFilters,
    order="name, id",
    derived=_DERIVED,
    pdm_column="pdm",
    institution_column="id",
)
PUBLIC_INSTITUTIONS = Listing(
    PublicInstitution, DIRECTORY, PublicInstitutionFilters, order="name, id"
)
_ONE = Query(
    InstitutionView,
    f"SELECT {', '.join(_STORED)}, {_licence_state('$2::date')} AS licence "
    f"FROM {TABLE} WHERE id = $1",
)
_PUBLIC_ONE = Query(
    PublicInstitution,
    f"SELECT {', '.join(PublicInstitution.__struct_fields__)} FROM {TABLE} WHERE id = $1",
)
_SEARCHED = Query(_Searched, f"SELECT name, address FROM {TABLE} WHERE tenant_id = $1 AND id = $2")


async def list_institutions(
    conn: DbConnection,
    filters: InstitutionFilters,
    *,
    limit: int,
    offset: int,
    day: date,
    reader: Scope = PROVINCE,
    as_of: datetime | None = None,
) -> Page[InstitutionView]:
    """A page of the institutions now, or as they were at `as_of`, with the total; `day`:
    the province's day the licences' states are of (today, or the day of `as_of`);
    `reader`: the scope of who reads (which the transaction's row-level security applies
    anyway; said here, the list narrows by an index)."""
    return await INSTITUTIONS.page(
        conn, filters, limit=limit, offset=offset, as_of=as_of, day=day, scope=reader
    )


async def get_institution(
    conn: DbConnection, institution_id: UUID, *, day: date
) -> InstitutionView | None:
    return await _ONE.one(conn, institution_id, day)


async def get_public_institution(
    conn: DbConnection, institution_id: UUID
) -> PublicInstitution | None:
    return await _PUBLIC_ONE.one(conn, institution_id)


_UNDER = f"""SELECT id FROM {TABLE}
    WHERE owner = $1 AND unit = ANY($2::text[]) AND status <> 'closed' ORDER BY id"""
_BRANCH = f"SELECT owner, unit FROM {TABLE} WHERE id = $1 AND status <> 'closed'"


async def open_institutions_under(
    conn: DbConnection, owner: Owner, branches: list[str]
) -> list[UUID]:
    """The institutions of `owner` sitting under one of `branches` (PCM or PCA codes, as
    the owner says), closed ones left out."""
    return [r["id"] for r in await conn.fetch(_UNDER, owner, branches)]


async def branch_of_open(conn: DbConnection, institution_id: UUID) -> tuple[Owner, str] | None:
    """The owner and the branch of an institution that is not closed and sits under a
    branch; None otherwise."""
    row = await conn.fetchrow(_BRANCH, institution_id)
    if row is None or row["unit"] is None:
        return None
    return Owner(row["owner"]), row["unit"]


class InstitutionsProjection:
    name = "institutions"
    tables = DIRECTORY.tables

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Other events change nothing shown here, but an institution's own (its officers,
        its profile) still move the row to the record's version: clients send that version
        back (If-Match) with their next command."""
        if envelope.aggregate == "Institution":
            await _update(conn, envelope)

    @on.register
    async def _(
        self, event: Institution.AddressChanged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        # The directory (and its search text) shows where the institution is now.
        await _update(conn, envelope, address=event.address)

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await DIRECTORY.insert(
            conn,
            envelope,
            {
                "name": event.name,
                "kind": event.kind,
                "owner": event.owner,
                "pdm": event.pdm,
                "address": event.address,
                "unit": event.unit,
                "search": searchable(event.name, event.address),
                "status": InstitutionStatus.ACTIVE,
                "registered_at": envelope.occurred_at,
                "updated_at": envelope.occurred_at,
            },
        )

    @on.register
    async def _(
        self, event: Institution.Renamed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, name=event.name)

    @on.register
    async def _(
        self, event: Institution.MovedToUnit, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, unit=event.unit)

    @on.register
    async def _(
        self, event: Institution.Suspended, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=InstitutionStatus.SUSPENDED)

    @on.register
    async def _(
        self, event: Institution.Reinstated, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=InstitutionStatus.ACTIVE)

    @on.register
    async def _(
        self, event: Institution.Closed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=InstitutionStatus.CLOSED)

    # The accreditation, from its record's events (each names the institution).

    @on.register
    async def _(
        self, event: Accreditation.Granted, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _accreditation(
            conn,
            envelope,
            event.institution_id,
            grade=Standing(event.grade.value),
            accredited_until=event.valid_until,
        )

    @on.register
    async def _(
        self, event: Accreditation.Refused, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _accreditation(
            conn,
            envelope,
            event.institution_id,
            grade=Standing(Grade.NOT_ACCREDITED.value),
            accredited_until=None,
        )

    @on.register
    async def _(
        self, event: Accreditation.Revoked, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _accreditation(conn, envelope, event.institution_id, grade=Standing.REVOKED)

    @on.register
    async def _(
        self, event: Accreditation.Expired, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _accreditation(conn, envelope, event.institution_id, grade=Standing.EXPIRED)

    # The operating licence: its first event names the institution, the later ones only
    # the licence (its id, kept in the row).

    @on.register
    async def _(self, event: Licence.Recorded, conn: DbConnection, envelope: EventEnvelope) -> None:
        if event.kind is LicenceKind.OPERATING:
            await DIRECTORY.follow(
                conn,
                envelope,
                "id",
                event.institution_id,
                {
                    "licence_id": envelope.aggregate_id,
                    "licence_status": LicenceStatus.VALID,
                    "licence_valid_until": event.valid_until,
                },
            )

    @on.register
    async def _(self, event: Licence.Renewed, conn: DbConnection, envelope: EventEnvelope) -> None:
        await DIRECTORY.follow(
            conn,
            envelope,
            "licence_id",
            envelope.aggregate_id,
            {"licence_status": LicenceStatus.VALID, "licence_valid_until": event.valid_until},
        )

    @on.register
    async def _(self, event: Licence.Revoked, conn: DbConnection, envelope: EventEnvelope) -> None:
        await DIRECTORY.follow(
            conn,
            envelope,
            "licence_id",
            envelope.aggregate_id,
            {"licence_status": LicenceStatus.REVOKED},
        )


async def _accreditation(
    conn: DbConnection, envelope: EventEnvelope, institution_id: UUID, **changes: object
) -> None:
    """The institution's row shows its accreditation's latest event; `updated_at` and
    `version` stay the institution's own."""
    await DIRECTORY.follow(conn, envelope, "id", institution_id, changes)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: Any) -> None:
    """The institution's row after one more event: its version, when, and what changed;
    its search text follows its name and address."""
    if {"name", "address"} & changes.keys():
        row = await _SEARCHED.one(conn, envelope.tenant, envelope.aggregate_id)
        if row is not None:
            changes["search"] = searchable(
                changes.get("name", row.name), changes.get("address", row.address)
            )
    await DIRECTORY.update(conn, envelope, {"updated_at": envelope.occurred_at, **changes})


class GradeCounts(msgspec.Struct, kw_only=True):
    """Institutions by their accreditation now: in force per grade, and the others."""

    institutions: int = 0
    a: int = 0
    b: int = 0
    c: int = 0
    accredited: int = 0
    not_accredited: int = 0
    expired: int = 0
    revoked: int = 0
    never_assessed: int = 0

    def add(self, other: GradeCounts) -> None:
        for name in self.__struct_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


# One scan of the directory: its `grade` column is the accreditation in one word
# (`Standing`), kept by this projection. Closed institutions count in none of the figures.
_COUNTS = f"""
    SELECT count(*) AS institutions,
           count(*) FILTER (WHERE grade = 'A') AS a,
           count(*) FILTER (WHERE grade = 'B') AS b,
           count(*) FILTER (WHERE grade = 'C') AS c,
           count(*) FILTER (WHERE grade IN ('A', 'B', 'C')) AS accredited,
           count(*) FILTER (WHERE grade = 'not_accredited') AS not_accredited,
           count(*) FILTER (WHERE grade = 'expired') AS expired,
           count(*) FILTER (WHERE grade = 'revoked') AS revoked,
           count(*) FILTER (WHERE grade = 'never_assessed') AS never_assessed
    FROM {TABLE} WHERE status <> 'closed' AND ($1::text IS NULL OR kind = $1)"""


async def grade_counts(conn: DbConnection, *, kind: InstitutionType | None) -> GradeCounts:
    """Institutions per accreditation standing in the tenant (or the reader's PDM)."""
    row = await conn.fetchrow(_COUNTS, kind)
    assert row is not None  # an aggregate query answers one row
    return GradeCounts(**dict(row))
