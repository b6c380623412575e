"""The library's PostgreSQL recorder plus an idempotency record written in the same
transaction as the events, so a retried command can never record its events twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from shared.service_layer.unit_of_work import IdempotencyRecord


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
        # `status` is no longer read: a replay answers with the status of its route.
        self._insert_key = SQL(
            "INSERT INTO {0}.idempotency_keys (key, fingerprint, status, body) "
            "VALUES (%s, %s, 0, %s)"
        ).format(schema)
        self._select_key = SQL(
            "SELECT key, fingerprint, body FROM {0}.idempotency_keys WHERE key = %s"
        ).format(schema)

    def _insert_stored_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        record: IdempotencyRecord | None = kwargs.get("idempotency")
        if record is not None:
            # A concurrent retry with the same key fails here on the primary key and its
            # events are rolled back with it. Last in the pipeline (after the table lock and
            # the insert), so the library's sync reports its unique violation as such: a
            # failure earlier in the pipeline surfaces as "pipeline aborted" (an operational
            # error, a 500). Its own cursor, since the library reads the new positions from
            # `curs`.
            with curs.connection.cursor() as key_curs:
                key_curs.execute(self._insert_key, (record.key, record.fingerprint, record.reply))

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self._notify)

    def find_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_key, (key,))
            row = curs.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(row["key"], row["fingerprint"], bytes(row["body"]))

    def record_without_events(self, record: IdempotencyRecord) -> None:
        """A command that changed nothing still answers a retry with its first result."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._insert_key, (record.key, record.fingerprint, record.reply))
