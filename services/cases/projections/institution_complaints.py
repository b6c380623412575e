"""The complaints naming each institution, as cases' rule "a closed institution's complaints
are flagged" knows them: noted by the rule's reaction to a complaint's receipt
(`process_managers/when_complaint_received_flag_if_institution_closed.py`), in the
transaction in which it reads the institution's status, and read by its reaction to the
closure (`when_institution_closed_flag_complaints.py`)."""

from __future__ import annotations

from uuid import UUID

from shared.db.pool import DbConnection

TABLE = "cases.institution_complaints"


async def note_complaint(
    conn: DbConnection, tenant: str, institution_id: UUID, complaint_id: UUID
) -> None:
    await conn.execute(
        f"""INSERT INTO {TABLE} (tenant_id, institution_id, complaint_id)
            VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
        tenant,
        institution_id,
        complaint_id,
    )


async def complaints_about(conn: DbConnection, institution_id: UUID) -> list[UUID]:
    """The complaints noted as naming `institution_id`."""
    rows = await conn.fetch(
        f"SELECT complaint_id FROM {TABLE} WHERE institution_id = $1 ORDER BY complaint_id",
        institution_id,
    )
    return [row["complaint_id"] for row in rows]
