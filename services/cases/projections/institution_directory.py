"""The directory of institutions a complaint or referral may name: cases' read model of the
registry's institutions, learned from the registry's events (never its tables). Its writer
is a projection of another service's events, so the kernel runs it as a reaction (the
consumer of the registry's stream, `shared.messaging.consumer`)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from services.cases.domain.complaint import KnownInstitution
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
    events = frozenset(
        {
            "Institution.Registered",
            "Institution.Renamed",
            "Institution.Suspended",
            "Institution.Reinstated",
        }
    )

    async def handle(self, conn: DbConnection, event: EventEnvelope) -> None:
        if event.event == "Registered":
            await conn.execute(
                f"""INSERT INTO {TABLE}
                     (tenant_id, institution_id, name, kind, status, pdm, source_version)
                   VALUES ($1, $2, $3, $4, 'active', $5, $6)
                   ON CONFLICT (tenant_id, institution_id) DO NOTHING""",
                event.tenant,
                event.aggregate_id,
                event.data["name"],
                event.data["kind"],
                event.data["pdm"],
                event.aggregate_version,
            )
            return
        column, value = {
            "Renamed": ("name", event.data.get("name")),
            "Suspended": ("status", "suspended"),
            "Reinstated": ("status", "active"),
        }[event.event]
        await conn.execute(
            f"""UPDATE {TABLE} SET {column} = $3, source_version = $4
                WHERE tenant_id = $1 AND institution_id = $2 AND source_version < $4""",
            event.tenant,
            event.aggregate_id,
            value,
            event.aggregate_version,
        )
