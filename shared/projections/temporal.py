"""Temporal read models: a read model that answers "as of date D" with one indexed query.

A read-model table keeps its current rows as before (its reads, indexes and plans do not
change), and a history table beside it, `<table>_history`, keeps every version of every row
with the period it was valid: `valid_from` (the time of the event that made it) and
`valid_to` (the time of the next one; `infinity` while it is current). The projection
writes both in one statement per event, through `TemporalTable`; the periods of a row's
versions follow each other without gap or overlap, so at any moment exactly one version of
a row is valid — none before the row's first event.

A row may also show what another record's events say about it (an institution's directory
row shows its accreditation): `follow` changes the row's columns and adds a version to its
history at that event's time, but leaves its `version` alone — that stays the row's own
record's, the one its clients send back with If-Match. Such a table's history is keyed by
(tenant, key, version, valid_from), since one `version` then spans several periods.

Event times, never the clock: a rebuild (`mpks rebuild`) reproduces the same versions.

The history table is declared by the migration that creates the read model, or a later
one, with the kernel's helper (shared/db/sql/kernel.sql):

    SELECT registry.add_history('registry.institutions', pdm_column => 'pdm',
                                institution_column => 'id');

It copies the table's columns, adds the period, the index the as-of query uses
(`tenant_id, valid_to, valid_from`: the versions still valid after D, of which those valid
from D or before) and the same row-level security as every read model. A column added to
the read model later is added to its history table by the same migration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope

# tenant_id, the row's key, its version and the event's time.
_FIXED = 4


class TemporalTable:
    """A read-model table with its history. `columns` are all the table's columns; it
    must have `tenant_id`, the key (`id` by default) and `version`, which the event sets."""

    def __init__(self, table: str, columns: Sequence[str], *, key: str = "id") -> None:
        missing = {"tenant_id", key, "version"} - set(columns)
        if missing:
            raise ValueError(f"{table} needs the columns {sorted(missing)}")
        self.table = table
        self.history = f"{table}_history"
        self.key = key
        self.columns = list(columns)
        self.tables = (table, self.history)
        listed = ", ".join(self.columns)
        # A version already applied (replay) changes nothing: the current row's version
        # guard leaves `changed` empty, and nothing is closed or added.
        self._update_tail = f"""
            WHERE tenant_id = $1 AND {key} = $2 AND version < $3
            RETURNING {listed}),
          closed AS (
            UPDATE {self.history} h SET valid_to = greatest(h.valid_from, $4)
            FROM changed WHERE h.tenant_id = $1 AND h.{key} = $2 AND h.valid_to = 'infinity'
            RETURNING h.valid_to)
        INSERT INTO {self.history} ({listed}, valid_from)
        SELECT {listed}, coalesce((SELECT max(valid_to) FROM closed), $4) FROM changed"""
        self._listed = listed

    async def insert(
        self, conn: DbConnection, envelope: EventEnvelope, values: Mapping[str, object]
    ) -> None:
        """A row's first version, from its record's first event (again: nothing)."""
        names = ["tenant_id", self.key, "version", *values]
        placeholders = ["$1", "$2", "$3", *(f"${i + _FIXED + 1}" for i in range(len(values)))]
        await conn.execute(
            f"""WITH added AS (
                  INSERT INTO {self.table} ({", ".join(names)})
                  VALUES ({", ".join(placeholders)})
                  ON CONFLICT (tenant_id, {self.key}) DO NOTHING
                  RETURNING {self._listed})
                INSERT INTO {self.history} ({self._listed}, valid_from)
                SELECT {self._listed}, $4 FROM added""",
            envelope.tenant,
            envelope.aggregate_id,
            envelope.aggregate_version,
            envelope.occurred_at,
            *values.values(),
        )

    async def update(
        self, conn: DbConnection, envelope: EventEnvelope, changes: Mapping[str, object]
    ) -> None:
        """A row's next version, from its record's next event: the current row changed,
        the version it replaces closed at the event's time, the new one added."""
        assignments = "".join(f", {c} = ${i + _FIXED + 1}" for i, c in enumerate(changes))
        await conn.execute(
            f"WITH changed AS (UPDATE {self.table} SET version = $3{assignments}"
            + self._update_tail,
            envelope.tenant,
            envelope.aggregate_id,
            envelope.aggregate_version,
            envelope.occurred_at,
            *changes.values(),
        )

    async def follow(
        self,
        conn: DbConnection,
        envelope: EventEnvelope,
        column: str,
        value: object,
        changes: Mapping[str, object],
    ) -> None:
        """The rows whose `column` is `value` (the key, or a column naming the other
        record), after an event of another record (`envelope`'s): `changes` applied, the
        version each replaces closed at the event's time, the new one added, `version`
        untouched. A row already showing `changes` gains no version (so an event applied
        twice adds nothing)."""
        if column != self.key:
            # Through the keys: the history's closing UPDATE must name its row by key, or
            # the planner, sure that few rows are current, scans every current version of
            # the tenant's history for each event (seen: 13k rows, 80 s of catch-up).
            for row in await conn.fetch(
                f"SELECT {self.key} FROM {self.table} WHERE tenant_id = $1 AND {column} = $2",
                envelope.tenant,
                value,
            ):
                await self.follow(conn, envelope, self.key, row[self.key], changes)
            return
        names = list(changes)
        values = [f"${i + 4}" for i in range(len(names))]
        assignments = ", ".join(f"{c} = {v}" for c, v in zip(names, values, strict=True))
        await conn.execute(
            f"""WITH changed AS (
                  UPDATE {self.table} SET {assignments}
                  WHERE tenant_id = $1 AND {self.key} = $2
                    AND ROW({", ".join(names)}) IS DISTINCT FROM ROW({", ".join(values)})
                  RETURNING {self._listed}),
                closed AS (
                  UPDATE {self.history} h SET valid_to = greatest(h.valid_from, $3)
                  FROM changed WHERE h.tenant_id = $1 AND h.{self.key} = $2
                    AND h.valid_to = 'infinity'
                  RETURNING h.valid_to)
                INSERT INTO {self.history} ({self._listed}, valid_from)
                SELECT {self._listed}, coalesce((SELECT max(valid_to) FROM closed), $3)
                FROM changed""",
            envelope.tenant,
            value,
            envelope.occurred_at,
            *changes.values(),
        )

    def valid_at(self, parameter: str, alias: str | None = None) -> str:
        """The SQL condition selecting the versions valid at the moment `parameter` (a
        query parameter such as `$1`), for a query on `history` (named `alias` in it, when
        the query joins another history table)."""
        of = f"{alias}." if alias else ""
        return (
            f"{of}valid_to > {parameter}::timestamptz "
            f"AND {of}valid_from <= {parameter}::timestamptz"
        )
