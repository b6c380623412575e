-- Bookkeeping every service keeps in its own schema ({schema} is the service name), and
-- the helper its migrations declare row-level security with.
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Last event of each tenant log the relay has published to NATS.
CREATE TABLE IF NOT EXISTS {schema}.relay_positions (
    tenant_id text PRIMARY KEY,
    position bigint NOT NULL
);

-- Last event of each tenant log a projection has applied (same transaction as its rows).
CREATE TABLE IF NOT EXISTS {schema}.projection_positions (
    projection text NOT NULL,
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (projection, tenant_id)
);

-- Per consumer, per source log: the last position applied, to detect holes.
CREATE TABLE IF NOT EXISTS {schema}.consumer_positions (
    consumer text NOT NULL,
    source text NOT NULL,
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (consumer, source, tenant_id)
);

-- Every message a consumer has applied (or parked): its effect is never applied twice.
CREATE TABLE IF NOT EXISTS {schema}.processed_messages (
    consumer text NOT NULL,
    message_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Poison messages: kept with the reason instead of being redelivered forever.
CREATE TABLE IF NOT EXISTS {schema}.parked_messages (
    consumer text NOT NULL,
    message_id text NOT NULL,
    subject text NOT NULL,
    payload bytea NOT NULL,
    reason text NOT NULL,
    deliveries int NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- A follower (projection or consumer) that cannot apply an event of a tenant stops there,
-- for that tenant only, and records why; it is retried until it applies (shared/resilience).
CREATE TABLE IF NOT EXISTS {schema}.stalls (
    follower text NOT NULL,
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    message_id text NOT NULL,
    reason text NOT NULL,
    attempts int NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at timestamptz NOT NULL DEFAULT now(),
    retry_at timestamptz NOT NULL,
    PRIMARY KEY (follower, tenant_id)
);

-- Row-level security of a read-model table, written once for every table (migrations call
-- `SELECT {schema}.enable_tenant_rls('{schema}.t', pdm_column => 'pdm', ...)` right after
-- CREATE TABLE; calling it again re-declares the same policies). The table needs a
-- `tenant_id` column. Two policies:
-- - tenant_isolation: a transaction sees and writes only the rows of the tenant it names
--   (`app.tenant_id`, set by shared/db/pool.py); unset (NULL) sees nothing.
-- - actor_scope (restrictive, reads only): a reader scoped to a PDM or an institution
--   (`app.scope_pdm` / `app.scope_institution`, set by shared/http/reads.py; empty or unset
--   is the whole province) sees the rows whose `pdm_column` / `institution_column` names
--   its scope. A table without such a column shows a reader with that scope nothing.
CREATE OR REPLACE FUNCTION {schema}.enable_tenant_rls(
    tbl regclass, pdm_column text DEFAULT NULL, institution_column text DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
    EXECUTE format(
        $$CREATE POLICY tenant_isolation ON %s
            USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
            WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)))$$,
        tbl);
    EXECUTE format('DROP POLICY IF EXISTS actor_scope ON %s', tbl);
    EXECUTE format(
        $$CREATE POLICY actor_scope ON %s AS RESTRICTIVE FOR SELECT
            USING ((SELECT coalesce(current_setting('app.scope_pdm', true), '')) %s
               AND (SELECT coalesce(current_setting('app.scope_institution', true), '')) %s)$$,
        tbl,
        CASE WHEN pdm_column IS NULL THEN $$= ''$$
             ELSE format($$IN ('', %I)$$, pdm_column) END,
        CASE WHEN institution_column IS NULL THEN $$= ''$$
             ELSE format($$IN ('', %I::text)$$, institution_column) END);
END
$fn$;
-- DDL for the owner only (the services' login could not alter tables anyway).
REVOKE ALL ON FUNCTION {schema}.enable_tenant_rls(regclass, text, text) FROM PUBLIC;
-- Each setting is read once per statement, `(SELECT current_setting(…))`, not once per row:
-- a count of 10,000 rows took 3.3 ms with the call per row, 1.2 ms so. Policies declared
-- before are rewritten so, once (same conditions; the table is locked for a moment).
DO $upgrade$
DECLARE
  p record;
  qual text;
BEGIN
  FOR p IN
    SELECT pol.polrelid::regclass AS tbl, pol.polname,
           pg_get_expr(pol.polqual, pol.polrelid) AS expr
    FROM pg_policy pol
    JOIN pg_class c ON c.oid = pol.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = '{schema}' AND pol.polname IN ('tenant_isolation', 'actor_scope')
      AND pg_get_expr(pol.polqual, pol.polrelid) NOT LIKE '%SELECT%'
  LOOP
    IF p.polname = 'tenant_isolation' THEN
      EXECUTE format(
        $$ALTER POLICY tenant_isolation ON %s
            USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
            WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)))$$,
        p.tbl);
    ELSE
      qual := replace(replace(p.expr,
        $$COALESCE(current_setting('app.scope_pdm'::text, true), ''::text)$$,
        $$(SELECT COALESCE(current_setting('app.scope_pdm'::text, true), ''::text))$$),
        $$COALESCE(current_setting('app.scope_institution'::text, true), ''::text)$$,
        $$(SELECT COALESCE(current_setting('app.scope_institution'::text, true), ''::text))$$);
      EXECUTE format('ALTER POLICY actor_scope ON %s USING (%s)', p.tbl, qual);
    END IF;
  END LOOP;
END $upgrade$;

-- The key of each data subject whose personal data this service holds (shared/personal):
-- AES-256 data keys, stored wrapped (encrypted) under the master key. Erasing a subject
-- destroys its key (`wrapped` NULL, `erased_at` set); the row stays, so an erased subject
-- is told apart from an unknown one and never gets a new key.
CREATE TABLE IF NOT EXISTS {schema}.subject_keys (
    tenant_id text NOT NULL,
    subject text NOT NULL,
    wrapped bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at timestamptz,
    PRIMARY KEY (tenant_id, subject),
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL))
);
-- Once: re-declaring policies locks the table, which running replicas use.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_policies
                 WHERE schemaname = '{schema}' AND tablename = 'subject_keys') THEN
    PERFORM {schema}.enable_tenant_rls('{schema}.subject_keys');
  END IF;
END $$;

-- The command path's keys, in one round trip: creates the ones missing (with the wrapped
-- keys the caller made; a concurrent command creating the same subject's key wins, and
-- both get its key) and returns every one asked for. A key made for a command that then
-- fails is harmless: it encrypts nothing. Its commit does not wait for the disk: the
-- append that follows does, and flushing the log up to the append flushes the key too
-- (one log, in order), so no event is ever durable without its key — and a key lost in a
-- crash before that append sealed nothing that survived.
CREATE OR REPLACE FUNCTION {schema}.subject_keys_ensure(
    in_tenant text, in_subjects text[], in_wrapped bytea[])
RETURNS TABLE (subject text, wrapped bytea)
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''
AS $$
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  PERFORM set_config('synchronous_commit', 'off', true);
  INSERT INTO {schema}.subject_keys (tenant_id, subject, wrapped)
    SELECT in_tenant, s, w FROM unnest(in_subjects, in_wrapped) AS u(s, w)
    ON CONFLICT DO NOTHING;
  -- A statement of its own: its snapshot sees a key a concurrent command just committed.
  RETURN QUERY SELECT k.subject, k.wrapped FROM {schema}.subject_keys k
    WHERE k.tenant_id = in_tenant AND k.subject = ANY(in_subjects);
END $$;

-- The keys a reader needs (NULL: erased; a subject without a row is unknown).
CREATE OR REPLACE FUNCTION {schema}.subject_keys_of(in_tenant text, in_subjects text[])
RETURNS TABLE (subject text, wrapped bytea)
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''
AS $$
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  RETURN QUERY SELECT k.subject, k.wrapped FROM {schema}.subject_keys k
    WHERE k.tenant_id = in_tenant AND k.subject = ANY(in_subjects);
END $$;
-- Signed checkpoints of each tenant log's hash chain (shared/audit/checkpoints.py): the
-- chain's head at `position`, signed with Ed25519 by the key `key_id`. Also published to
-- a JetStream stream that refuses deletes and purges; `published` once it acknowledged.
CREATE TABLE IF NOT EXISTS {schema}.chain_checkpoints (
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    head_hash bytea NOT NULL,
    signed_at timestamptz NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL,
    published boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, position)
);

-- The access log (shared/audit/access.py): one row per `Access.Recorded` event of a tenant
-- log. Province-wide readers only (no PDM or institution column: a scoped reader sees none).
CREATE TABLE IF NOT EXISTS {schema}.access_log (
    tenant_id text NOT NULL,
    position bigint NOT NULL,
    id uuid NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    reason text,
    token_tenant text NOT NULL,
    roles text[] NOT NULL,
    route text NOT NULL,
    path text NOT NULL,
    query text NOT NULL,
    resource text NOT NULL,
    record_ids uuid[] NOT NULL,
    restricted_shown boolean NOT NULL,
    correlation_id text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS access_log_by_position ON {schema}.access_log (tenant_id, position);
CREATE INDEX IF NOT EXISTS access_log_by_actor
    ON {schema}.access_log (tenant_id, actor, position);
SELECT {schema}.enable_tenant_rls('{schema}.access_log');

-- The history table of a temporal read model (shared/projections/temporal.py): every
-- version of every row of `tbl`, with the period it was valid, [valid_from, valid_to);
-- `infinity` while current. Its index serves "as of D": the versions still valid after D,
-- of which those valid from D or before. Same row-level security as the table.
CREATE OR REPLACE FUNCTION {schema}.add_history(
    tbl regclass, key_column text DEFAULT 'id', pdm_column text DEFAULT NULL,
    institution_column text DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    history text := tbl::text || '_history';
BEGIN
    EXECUTE format(
        $$CREATE TABLE %s (
            LIKE %s INCLUDING DEFAULTS,
            valid_from timestamptz NOT NULL,
            valid_to timestamptz NOT NULL DEFAULT 'infinity',
            PRIMARY KEY (tenant_id, %I, version),
            CHECK (valid_from <= valid_to))$$,
        history, tbl, key_column);
    EXECUTE format('CREATE INDEX ON %s (tenant_id, valid_to, valid_from)', history);
    PERFORM {schema}.enable_tenant_rls(history::regclass, pdm_column, institution_column);
END
$fn$;
REVOKE ALL ON FUNCTION {schema}.add_history(regclass, text, text, text) FROM PUBLIC;

-- Snapshots of records (shared/audit/snapshots.py): a record's state every N versions, for
-- reading it as of a date without folding its whole history. Derived data, taken by the
-- `snapshots` projection; `recorded_until` is the latest time of the events folded into it.
-- Created once: re-declaring the policies on every start would lock the table each time.
DO $do$
BEGIN
    IF to_regclass('{schema}.snapshots') IS NULL THEN
        CREATE TABLE {schema}.snapshots (
            tenant_id text NOT NULL,
            aggregate_id uuid NOT NULL,
            version bigint NOT NULL,
            aggregate text NOT NULL,
            recorded_until timestamptz NOT NULL,
            state bytea NOT NULL,
            PRIMARY KEY (tenant_id, aggregate_id, version)
        );
        -- Tenant isolation only: as-of reads check the reader's scope on the record's
        -- state (shared/http/as_of.py), as the history does.
        PERFORM {schema}.enable_tenant_rls('{schema}.snapshots');
    END IF;
END
$do$;

-- Deadlines (shared/scheduling): "when `due_at` passes, issue `command` (a command of this
-- service, `payload` its JSON) in the tenant, once". Set and cancelled by the service's
-- projections with their rows; issued by the scheduler, which removes the row. The
-- command's idempotency key is `key` with `scheduled_by` (the message id of the event that
-- set it). Guarded per tenant like the tenants' rows: the scheduler reads each tenant's.
CREATE TABLE IF NOT EXISTS {schema}.deadlines (
    tenant_id text NOT NULL,
    key text NOT NULL,
    due_at timestamptz NOT NULL,
    command text NOT NULL,
    payload jsonb NOT NULL,
    scheduled_by text NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    last_error text,
    retry_at timestamptz,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS deadlines_by_due_at ON {schema}.deadlines (tenant_id, due_at);
-- Once: re-declaring policies locks the table, which running replicas use.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_policies
                 WHERE schemaname = '{schema}' AND tablename = 'deadlines') THEN
    PERFORM {schema}.enable_tenant_rls('{schema}.deadlines');
  END IF;
END $$;
-- The deadlines an operator must see (shared/scheduling/report.py), for health and metrics:
-- refused ones (`attempts` > 0: kept with the reason, retried later) and overdue ones (never
-- refused, yet due before `in_overdue_before`: no scheduler issued them). One round trip
-- for every tenant named, each read under its own tenant setting as row-level security
-- wants; per tenant its first `in_limit` such rows (refused first, then by due time), each
-- with the tenant's totals of both kinds and when its longest-overdue one fell due.
CREATE OR REPLACE FUNCTION {schema}.deadlines_needing_attention(
    in_tenants text[], in_overdue_before timestamptz, in_limit int)
RETURNS TABLE (tenant text, key text, command text, due_at timestamptz, attempts int,
               last_error text, retry_at timestamptz, overdue bigint, refused bigint,
               oldest_overdue timestamptz)
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''
AS $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY in_tenants LOOP
    PERFORM set_config('app.tenant_id', t, true);
    RETURN QUERY
      SELECT d.tenant_id, d.key, d.command, d.due_at, d.attempts, d.last_error, d.retry_at,
             count(*) FILTER (WHERE d.attempts = 0) OVER (),
             count(*) FILTER (WHERE d.attempts > 0) OVER (),
             min(d.due_at) FILTER (WHERE d.attempts = 0) OVER ()
      FROM {schema}.deadlines d
      WHERE d.tenant_id = t AND (d.attempts > 0 OR d.due_at < in_overdue_before)
      ORDER BY d.attempts > 0 DESC, d.due_at, d.key
      LIMIT in_limit;
  END LOOP;
END $$;
