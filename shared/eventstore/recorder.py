"""The library's PostgreSQL recorder on a tenant schema: it creates the schema's tables (the
log and `idempotency_keys`, which the command path writes through
`shared.eventstore.functions`) and lets tests and tools save through the library."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
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
        # Through the tenant's append function, as the command path does: it numbers the
        # events and extends the log's hash chain (`shared.audit.chain`).
        self.insert_events_statement = SQL(
            "WITH e AS (SELECT * FROM unnest(%s::{2}[]) WITH ORDINALITY "
            "AS e(originator_id, originator_version, topic, state, n)), "
            "a AS (SELECT array_agg(1 ORDER BY e.n) AS commands, "
            "array_agg(e.originator_id ORDER BY e.n) AS ids, "
            "array_agg(e.originator_version ORDER BY e.n) AS versions, "
            "array_agg(e.topic ORDER BY e.n) AS topics, "
            "array_agg(e.state ORDER BY e.n) AS states FROM e) "
            "SELECT unnest(r.positions) AS notification_id FROM a, "
            "LATERAL {0}.append_events({3}, a.commands, a.ids, a.versions, a.topics, a.states, "
            "ARRAY[NULL]::text[], ARRAY[NULL]::text[], ARRAY[NULL]::bytea[], "
            "'{{}}'::int[], '{{}}'::uuid[], '{{}}'::bigint[]) AS r"
        ).format(schema, Identifier(events_table_name), shared_type, Literal(tenant))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.idempotency_keys ("
                "key text PRIMARY KEY, fingerprint text NOT NULL, status int NOT NULL, "
                "body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            ).format(schema)
        )

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self._notify)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        # The library's version insists on an INSERT's status; this is a SELECT. The
        # function refuses a taken version without an error: the library expects one.
        ids = [row["notification_id"] for row in curs.fetchall()]
        if len(ids) != len(stored_events):
            raise IntegrityError("a record version was already taken")
        return ids
