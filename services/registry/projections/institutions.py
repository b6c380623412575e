"""Institutions read model: one row per institution, its current state and version."""

from __future__ import annotations

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope


class InstitutionsProjection:
    name = "institutions"
    tables = ("registry.institutions",)

    async def apply(self, conn: DbConnection, event: EventEnvelope) -> None:
        if event.aggregate != "Institution":
            return
        data = event.data
        if event.event == "Registered":
            await conn.execute(
                """INSERT INTO registry.institutions
                     (tenant_id, id, name, kind, owner, pdm, address, status, version,
                      registered_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $9)
                   ON CONFLICT (tenant_id, id) DO NOTHING""",
                event.tenant,
                event.aggregate_id,
                data["name"],
                data["kind"],
                data["owner"],
                data["pdm"],
                data.get("address"),
                event.aggregate_version,
                event.occurred_at,
            )
            return
        changes: dict[str, object] = {}
        if event.event == "Renamed":
            changes["name"] = data["name"]
        elif event.event == "Suspended":
            changes["status"] = "suspended"
        elif event.event == "Reinstated":
            changes["status"] = "active"
        assignments = "".join(f", {column} = ${i + 5}" for i, column in enumerate(changes))
        # The version guard makes replaying an already-applied event a no-op.
        await conn.execute(
            f"""UPDATE registry.institutions
                SET version = $3, updated_at = $4{assignments}
                WHERE tenant_id = $1 AND id = $2 AND version < $3""",
            event.tenant,
            event.aggregate_id,
            event.aggregate_version,
            event.occurred_at,
            *changes.values(),
        )
