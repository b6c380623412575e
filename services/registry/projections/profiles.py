"""Institution profiles read model: one row per institution (address, capacity, services,
contact, at the institution's current version) and its beneficiaries per period; the
projection that writes them and the query that reads them, joined at read with the
institution's row of the directory (its name and status).

Beside the directory's table (`institutions.TABLE`), not in it: the directory's columns
(search, filters) and the profile's change apart, and a list of institutions need not carry
every profile."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.registry.domain.institution import Institution, InstitutionStatus
from services.registry.domain.profile import Beneficiaries, ServiceKind
from services.registry.projections import institutions
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope

TABLE = "registry.institution_profiles"
BENEFICIARIES = "registry.institution_beneficiaries"


class BeneficiariesView(msgspec.Struct):
    period: str
    counts: Beneficiaries
    reported_at: datetime


class ProfileView(msgspec.Struct):
    id: UUID
    name: str
    status: InstitutionStatus
    pdm: str
    address: str | None
    regency: str | None
    capacity: int | None
    services: list[ServiceKind]
    phone: str | None
    email: str | None
    # Latest period first.
    beneficiaries: list[BeneficiariesView]
    # The institution's version: the ETag an update sends back as If-Match.
    version: int
    updated_at: datetime


_COUNTS = Beneficiaries.__struct_fields__
_ONE = f"""SELECT p.id, i.name, i.status, p.pdm, p.address, p.regency, p.capacity, p.services,
                  p.phone, p.email, p.version, p.updated_at
           FROM {TABLE} p JOIN {institutions.TABLE} i USING (tenant_id, id) WHERE p.id = $1"""


async def get_profile(conn: DbConnection, institution_id: UUID) -> ProfileView | None:
    row = await conn.fetchrow(_ONE, institution_id)
    if row is None:
        return None
    reports = await conn.fetch(
        f"""SELECT period, {", ".join(_COUNTS)}, reported_at FROM {BENEFICIARIES}
            WHERE institution_id = $1 ORDER BY period DESC""",
        institution_id,
    )
    return ProfileView(
        **dict(row),
        beneficiaries=[
            BeneficiariesView(
                period=r["period"],
                counts=Beneficiaries(**{c: r[c] for c in _COUNTS}),
                reported_at=r["reported_at"],
            )
            for r in reports
        ],
    )


class ProfilesProjection:
    name = "institution_profiles"
    tables = (TABLE, BENEFICIARIES)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Every other event of an institution moves its version on (`Institution.Event`)."""

    @on.register
    async def _(
        self, event: Institution.Event, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope)

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {TABLE} (tenant_id, id, pdm, address, version, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            envelope.aggregate_id,
            event.pdm,
            event.address,
            envelope.aggregate_version,
            envelope.occurred_at,
        )

    @on.register
    async def _(
        self, event: Institution.AddressChanged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, address=event.address, regency=event.regency)

    @on.register
    async def _(
        self, event: Institution.CapacityChanged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, capacity=event.capacity)

    @on.register
    async def _(
        self, event: Institution.ServicesChanged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, services=[str(s) for s in event.services])

    @on.register
    async def _(
        self, event: Institution.ContactChanged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, phone=event.phone, email=event.email)

    @on.register
    async def _(
        self, event: Institution.BeneficiariesReported, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {BENEFICIARIES}
                  (tenant_id, institution_id, pdm, period, {", ".join(_COUNTS)}, reported_at)
                SELECT $1, $2, p.pdm, $3, $4, $5, $6, $7, $8, $9
                FROM {TABLE} p WHERE p.tenant_id = $1 AND p.id = $2
                ON CONFLICT (tenant_id, institution_id, period) DO UPDATE
                SET ({", ".join(_COUNTS)}, reported_at) = ({
                ", ".join(f"excluded.{c}" for c in _COUNTS)
            }, excluded.reported_at)""",
            envelope.tenant,
            envelope.aggregate_id,
            event.period,
            *(getattr(event, c) for c in _COUNTS),
            envelope.occurred_at,
        )
        await _update(conn, envelope)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: object) -> None:
    """The profile after one more event of its institution; an event applied already (a
    replay) changes nothing."""
    assignments = "".join(f", {c} = ${i + 5}" for i, c in enumerate(changes))
    await conn.execute(
        f"""UPDATE {TABLE} SET version = $3, updated_at = $4{assignments}
            WHERE tenant_id = $1 AND id = $2 AND version < $3""",
        envelope.tenant,
        envelope.aggregate_id,
        envelope.aggregate_version,
        envelope.occurred_at,
        *changes.values(),
    )
