"""The library's PostgreSQL recorder on a tenant schema: it creates the schema's tables (the
log and `idempotency_keys`, which the command path writes through
`shared.eventstore.functions`) and lets tests and tools save through the library."""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal


class TenantRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: Any, *, events_table_name: str, types_schema: str, tenant: str
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        # Every tenant of a service notifies on one channel; the payload says which log
        # changed, so readers fetch from that log only.
        self._notify = SQL("NOTIFY {0}, {1}").format(Identifier(self.channel_name), Literal(tenant))
        schema = Identifier(self.datastore.schema)
        # Insert through the service-wide composite type (see TenantDatastore).
        shared_type = SQL("{0}.{1}").format(
            Identifier(types_schema), Identifier(self.stored_event_type_name)
        )
        self.sql_create_statements.insert(
            0,
            SQL(
                "CREATE TYPE {0} AS (originator_id uuid, originator_version bigint, "
                "topic text, state bytea)"
            ).format(shared_type),
        )
        self.insert_events_statement = SQL(
            "INSERT INTO {0}.{1} AS t (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state "
            "FROM unnest(%s::{2}[]) RETURNING notification_id"
        ).format(schema, Identifier(events_table_name), shared_type)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.idempotency_keys ("
                "key text PRIMARY KEY, fingerprint text NOT NULL, status int NOT NULL, "
                "body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            ).format(schema)
        )

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self._notify)
