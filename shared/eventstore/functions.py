"""The SQL functions the command path calls on a tenant log, one set per tenant schema: each
command's read, append, key lookup and head is one statement, so one round trip.

Every function names its tenant first and sets `app.tenant_id` for its own duration (the
`SET` clause puts the caller's value back on return): they are SECURITY INVOKER, so the
log's row-level security (`shared.eventstore.access`) still decides what the services'
login sees and writes, exactly as for a plain statement naming that tenant.

`append_events` keeps the library's guarantee that commit order equals notification order:
it takes `LOCK TABLE … IN EXCLUSIVE MODE` before it numbers the events, so a reader that
reads `notification_id > position` never skips an append that commits late. Under that
lock it also extends the log's hash chain (`shared.audit.chain`): it numbers the events on
from the head (`head + 1`, not from the table's sequence, so a failed append leaves no gap
and a missing position means a removed event) and stores each event's hash with it. It
sends no NOTIFY: a notifying transaction holds a cluster-wide lock through its commit flush,
which serialised every command of every tenant. Readers are woken after the commit instead
(`shared.eventstore.wakeups`).

It takes the events of several commands at once (group commit, `shared.eventstore.appends`):
each event names its command, each command its Idempotency-Key. Under the lock it refuses
every command one of whose record versions or whose key is already taken — it writes nothing
of that command and names it in `refused` — and appends the others in one transaction. The
lock makes that check exact (every earlier append has committed, no other is running), so a
lost race is an answer for its own command, never an error that fails the commands sharing
its call. Two commands of one call claiming the same version or key (a retry arriving with
its first attempt) fail the call on the unique constraint; the caller then sends each alone.
A call of one command skips the check: the unique constraint answers it at less cost.

A command also names the records it decided on without changing them, each with the version
it read (the council a registration is placed in, say: read from a cache,
`shared.eventstore.record_cache`). One recorded since makes the command `stale`: nothing of it
is written, and it runs again on what is recorded now.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.audit.chain import GENESIS_SQL, link_sql
from shared.db.pool import DbConnection
from shared.eventstore.stores import events_table, tenant_schema

# The caller's tenant setting is restored when each function returns.
_HEADER = """LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''"""


def log_functions(service: str, tenant: str) -> str:
    schema = tenant_schema(service, tenant)
    table = f"{schema}.{events_table(service)}"
    keys = f"{schema}.idempotency_keys"
    link = link_sql(
        service,
        tenant,
        previous="previous",
        position="positions[j]",
        record_id="in_ids[i]",
        version="in_versions[i]",
        topic="in_topics[i]",
        state="in_states[i]",
    )
    return f"""
-- The signatures before group commit (one command per call) and before read checks.
DROP FUNCTION IF EXISTS {schema}.append_events(
    text, uuid[], bigint[], text[], bytea[], text, text, bytea);
DROP FUNCTION IF EXISTS {schema}.append_events(
    text, int[], uuid[], bigint[], text[], bytea[], text[], text[], bytea[]);

CREATE OR REPLACE FUNCTION {schema}.append_events(
    in_tenant text, in_commands int[], in_ids uuid[], in_versions bigint[], in_topics text[],
    in_states bytea[], in_keys text[], in_fingerprints text[], in_replies bytea[],
    in_read_commands int[], in_read_ids uuid[], in_read_versions bigint[],
    OUT refused int[], OUT stale int[], OUT positions bigint[])
{_HEADER}
AS $$
DECLARE
  accepted bigint[];
  i bigint;
  k int;
  hashes bytea[] := '{{}}';
  head bigint;
  previous bytea;
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  LOCK TABLE {table} IN EXCLUSIVE MODE;
  -- Commands are numbered from 1 in the order of the key arrays. One command alone needs
  -- no check (about 40% of the call): a taken version or key fails it on the unique
  -- constraint, which is its answer.
  refused := '{{}}';
  IF cardinality(in_keys) > 1 THEN
    SELECT coalesce(array_agg(DISTINCT taken.command), '{{}}') INTO refused FROM (
      SELECT e.command FROM unnest(in_commands, in_ids, in_versions) AS e(command, id, version)
        JOIN {table} t ON t.originator_id = e.id AND t.originator_version = e.version
      UNION ALL
      SELECT k.command FROM unnest(in_keys) WITH ORDINALITY AS k(key, command)
        JOIN {keys} t ON t.key = k.key) AS taken;
  END IF;
  -- The records a command decided on without changing them, each at the version it read
  -- (`in_read_versions` holds the next one: recorded since means changed since). A command
  -- reading a record another command of this call writes is stale too (conservatively:
  -- it is sent again, alone).
  -- One probe of the primary key per record read (a join would be planned for a hundred).
  stale := '{{}}';
  FOR k IN 1 .. coalesce(cardinality(in_read_ids), 0) LOOP
    IF in_read_commands[k] <> ALL (stale) AND (
        EXISTS (SELECT FROM {table} t
                WHERE t.originator_id = in_read_ids[k]
                  AND t.originator_version = in_read_versions[k])
        OR EXISTS (SELECT FROM unnest(in_commands, in_ids) AS e(command, id)
                   WHERE e.id = in_read_ids[k] AND e.command <> in_read_commands[k])) THEN
      stale := stale || in_read_commands[k];
    END IF;
  END LOOP;
  -- The events of the commands not refused, in the order given, so each command's
  -- positions follow its events' order.
  SELECT coalesce(array_agg(e.n ORDER BY e.n), '{{}}') INTO accepted
    FROM unnest(in_commands) WITH ORDINALITY AS e(command, n)
    WHERE e.command <> ALL (refused) AND e.command <> ALL (stale);
  -- The hash chain (shared.audit.chain, "chain v1"): the head's position and hash, read
  -- once under the lock; the new events are numbered on from the head, without gaps,
  -- and each hash covers the one before it.
  SELECT e.notification_id, e.hash INTO head, previous
    FROM {table} e ORDER BY e.notification_id DESC LIMIT 1;
  IF NOT FOUND THEN
    head := 0;
    previous := {GENESIS_SQL};
  END IF;
  -- Numbered in the loop, not by `array(SELECT generate_series(...))`: a subquery is
  -- planned again on every call (a custom plan each time), a fifth of the call's CPU.
  positions := '{{}}';
  FOR j IN 1 .. cardinality(accepted) LOOP
    i := accepted[j];
    positions := positions || (head + j);
    previous := {link};
    hashes := hashes || previous;
  END LOOP;
  INSERT INTO {table} (notification_id, originator_id, originator_version, topic, state, hash)
  SELECT p.position, in_ids[p.n], in_versions[p.n], in_topics[p.n], in_states[p.n], p.hash
    FROM unnest(positions, accepted, hashes) AS p(position, n, hash);
  -- (`status` is no longer read: a replay answers with the status of its route.)
  INSERT INTO {keys} (key, fingerprint, status, body)
  SELECT k.key, k.fingerprint, 0, k.reply
    FROM unnest(in_keys, in_fingerprints, in_replies)
      WITH ORDINALITY AS k(key, fingerprint, reply, command)
    WHERE k.key IS NOT NULL AND k.command <> ALL (refused) AND k.command <> ALL (stale);
END $$;

CREATE OR REPLACE FUNCTION {schema}.aggregate_events(in_tenant text, in_id uuid)
RETURNS TABLE (originator_version bigint, topic text, state bytea)
{_HEADER}
AS $$
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  RETURN QUERY SELECT e.originator_version, e.topic, e.state FROM {table} e
    WHERE e.originator_id = in_id ORDER BY e.originator_version;
END $$;

CREATE OR REPLACE FUNCTION {schema}.idempotency_record(in_tenant text, in_key text)
RETURNS TABLE (fingerprint text, body bytea)
{_HEADER}
AS $$
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  RETURN QUERY SELECT k.fingerprint, k.body FROM {keys} k WHERE k.key = in_key;
END $$;

CREATE OR REPLACE FUNCTION {schema}.log_head(in_tenant text)
RETURNS bigint
{_HEADER}
AS $$
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  RETURN (SELECT max(notification_id) FROM {table});
END $$;
"""


_FUNCTIONS = (
    "append_events(text, int[], uuid[], bigint[], text[], bytea[], text[], text[], bytea[], "
    "int[], uuid[], bigint[])",
    "aggregate_events(text, uuid)",
    "idempotency_record(text, text)",
    "log_head(text)",
)


async def install_log_functions(
    conn: DbConnection, service: str, tenants: Iterable[str], role: str
) -> None:
    """Create (or update) every tenant schema's functions, as their owner, and let `role`
    (the services' login) call them; run by the migration after the tables exist."""
    async with conn.transaction():
        for tenant in sorted(tenants):
            schema = tenant_schema(service, tenant)
            await conn.execute(log_functions(service, tenant))
            for signature in _FUNCTIONS:
                function = f"{schema}.{signature}"
                await conn.execute(
                    f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC; "
                    f"GRANT EXECUTE ON FUNCTION {function} TO {role}"
                )
