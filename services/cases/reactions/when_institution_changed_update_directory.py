"""Registry → cases: keep the directory of institutions a complaint or referral may name."""

from __future__ import annotations

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope


class WhenInstitutionChangedUpdateDirectory:
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
                """INSERT INTO cases.institution_directory
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
            f"""UPDATE cases.institution_directory SET {column} = $3, source_version = $4
                WHERE tenant_id = $1 AND institution_id = $2 AND source_version < $4""",
            event.tenant,
            event.aggregate_id,
            value,
            event.aggregate_version,
        )
