"""The directory of institutions a complaint or referral may name: cases' read model of the
registry's institutions, learned from the registry's events (never its tables), read typed:
the registry's event classes are its published language. Its writer is a projection of
another service's events, so the kernel runs it as a reaction (the consumer of the
registry's stream, `shared.messaging.consumer`)."""

from __future__ import annotations

from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.cases.domain.complaint import KnownInstitution
from services.registry.domain.institution import Institution, InstitutionStatus
from shared.db.pool import DbConnection, DbPool, tenant_transaction
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query
from shared.resilience.faults import CONNECTION_WAIT_SECONDS

TABLE = "cases.institution_directory"


class DirectoryEntry(msgspec.Struct):
    institution_id: UUID
    name: str
    kind: str
    status: str
    pdm: str | None


_LIST = Query(
    DirectoryEntry,
    f"""SELECT {", ".join(DirectoryEntry.__struct_fields__)} FROM {TABLE}
        ORDER BY name, institution_id""",
)
_KNOWN = Query(
    KnownInstitution,
    f"SELECT institution_id, name, status, pdm FROM {TABLE} WHERE institution_id = $1",
)


async def list_directory(conn: DbConnection) -> list[DirectoryEntry]:
    return await _LIST.all(conn)


async def known_institution(conn: DbConnection, institution_id: UUID) -> KnownInstitution | None:
    """What a complaint naming `institution_id` is checked against (None: never heard of)."""
    return await _KNOWN.one(conn, institution_id)


async def status_held(conn: DbConnection, institution_id: UUID) -> str | None:
    """The institution's status, its row held (`FOR SHARE`) until the caller's transaction
    ends: a change of status this projection is applying is waited for, and one applied
    after waits for the caller (None: never heard of)."""
    status: str | None = await conn.fetchval(
        f"SELECT status FROM {TABLE} WHERE institution_id = $1 FOR SHARE", institution_id
    )
    return status


class DirectoryLookup:
    """The directory as cases' handlers look institutions up (their `InstitutionDirectory`
    port): in the whole province, whoever asks."""

    def __init__(self, db: DbPool, tenant: str) -> None:
        self.db = db
        self.tenant = tenant

    async def known(self, institution_id: UUID) -> KnownInstitution | None:
        async with tenant_transaction(self.db, self.tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
            return await known_institution(conn, institution_id)


class InstitutionDirectoryProjection:
    # The durable consumer's name: NATS and `processed_messages` know it by this.
    name = "institution-directory"
    tables = (TABLE,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Registry events a complaint or referral does not check against."""

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {TABLE}
                 (tenant_id, institution_id, name, kind, status, pdm, source_version)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (tenant_id, institution_id) DO NOTHING""",
            envelope.tenant,
            envelope.aggregate_id,
            event.name,
            event.kind,
            InstitutionStatus.ACTIVE,
            event.pdm,
            envelope.aggregate_version,
        )

    @on.register
    async def _(
        self, event: Institution.Renamed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, "name", event.name)

    @on.register
    async def _(
        self, event: Institution.Suspended, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, "status", InstitutionStatus.SUSPENDED)

    @on.register
    async def _(
        self, event: Institution.Reinstated, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, "status", InstitutionStatus.ACTIVE)

    @on.register
    async def _(
        self, event: Institution.Closed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, "status", InstitutionStatus.CLOSED)


async def _update(conn: DbConnection, envelope: EventEnvelope, column: str, value: str) -> None:
    # The version guard makes an event applied again (or older than the row) a no-op.
    await conn.execute(
        f"""UPDATE {TABLE} SET {column} = $3, source_version = $4
            WHERE tenant_id = $1 AND institution_id = $2 AND source_version < $4""",
        envelope.tenant,
        envelope.aggregate_id,
        value,
        envelope.aggregate_version,
    )
