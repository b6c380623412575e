"""Deadlines as a service's projections record them: "when `due_at` passes, issue this
command in this tenant, once".

A deadline is derived data, like a read-model row: a projection sets it from an event (and
replaces or cancels it from later ones) in the transaction that writes its rows and its
position, so it is set exactly once per event and a rebuild derives the same deadlines
again. Its key names what it is about (one deadline per key and tenant: setting it again
replaces it); the event that set it, with the key, is the issued command's idempotency key,
so a deadline issued twice (a crash between the command and the row's removal) records the
command's effect once, and a replaced deadline issues a new command.

The table (`{schema}.deadlines`, shared/db/sql/kernel.sql) has the tenant's row-level
security: a command's payload is the tenant's data.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.service_layer.commands import Command


class Deadlines:
    def __init__(self, schema: str) -> None:
        self._set = f"""
            INSERT INTO {schema}.deadlines
              (tenant_id, key, due_at, command, payload, scheduled_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (tenant_id, key) DO UPDATE SET
              due_at = EXCLUDED.due_at, command = EXCLUDED.command,
              payload = EXCLUDED.payload, scheduled_by = EXCLUDED.scheduled_by,
              attempts = 0, last_error = NULL, retry_at = NULL"""
        self._cancel = f"DELETE FROM {schema}.deadlines WHERE tenant_id = $1 AND key = $2"

    async def set(
        self,
        conn: DbConnection,
        cause: EventEnvelope,
        key: str,
        due_at: datetime,
        command: Command,
    ) -> None:
        """From the event `cause`: when `due_at` passes, issue `command` in its tenant
        (replacing the deadline `key` had)."""
        await conn.execute(
            self._set,
            cause.tenant,
            key,
            due_at,
            type(command).__name__,
            msgspec.json.encode(command).decode(),
            cause.message_id,
        )

    async def cancel(self, conn: DbConnection, cause: EventEnvelope, key: str) -> None:
        """From the event `cause`: the deadline `key` no longer stands (none: nothing)."""
        await conn.execute(self._cancel, cause.tenant, key)
