"""What the services' login may do with the tenant logs: read and append one tenant's log at
a time, never change or delete a stored event.

Each tenant schema's tables (`<service>_events`, `idempotency_keys`) have row-level
security with one policy per allowed command, bound to the tenant the transaction (or, on
the event store's psycopg connections, the checkout) names in `app.tenant_id`:

- SELECT only while `app.tenant_id` is the schema's tenant, so the relay, the projections,
  the events feed and the command path each see only the log they name, and a query with
  no tenant, or another tenant, sees nothing;
- INSERT only under the same condition;
- no UPDATE or DELETE policy, so neither touches a row. The login holds UPDATE on the
  events table only because `LOCK TABLE … IN EXCLUSIVE MODE`, which every append takes to
  keep commit order, requires it; TRUNCATE (which row-level security would not stop) is
  not granted.

The condition is a call, `<service>.log_tenant_is('<tenant>')`, not the comparison it makes
(`current_setting('app.tenant_id', true) = '<tenant>'`): the planner cannot know that
comparison holds for every row or none, and guesses 0.5% of them. A log's last event then
looked cheaper to find by reading and sorting the whole table than by its index, and every
append, head and read did so until the log had tens of thousands of events (measured: 137 µs
of an append's ~650 µs with 600 events in the log). A function's result it guesses at one
third, and takes the indexes.

Every tenant's head (the last position, a number) stays readable in one round trip through
`<service>.log_heads()`, an ordinary (SECURITY INVOKER) function that names each tenant in
turn: the relay and the projections poll it for all 38 logs every second. The relay reads
the new events of every tenant it is behind in the same way, through
`<service>.logs_after(tenants, positions, limit)`: one round trip a pass instead of a
transaction per tenant (four round trips, and a pool reset).
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.db.pool import DbConnection
from shared.eventstore.stores import events_table, tenant_schema

# Per policy: the command it allows and the clause that binds it to the tenant.
_POLICIES = {
    "tenant_read": ("FOR SELECT", "USING"),
    "tenant_append": ("FOR INSERT", "WITH CHECK"),
}


def log_tenant_function(service: str) -> str:
    # PL/pgSQL, so that it is not inlined back into the comparison.
    return f"""CREATE OR REPLACE FUNCTION {service}.log_tenant_is(tenant text)
RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY INVOKER
AS $$
BEGIN
  RETURN current_setting('app.tenant_id', true) = tenant;
END $$"""


def log_heads_function(service: str, tenants: Iterable[str]) -> str:
    heads = "\n".join(
        f"  PERFORM set_config('app.tenant_id', '{t}', true);\n"
        f"  RETURN QUERY SELECT '{t}'::text, coalesce(max(notification_id), 0)::bigint "
        f"FROM {tenant_schema(service, t)}.{events_table(service)};"
        for t in tenants
    )
    # The function's own SET clause confines the set_config calls to the function: the
    # caller's tenant setting is back as it was when it returns.
    return f"""CREATE OR REPLACE FUNCTION {service}.log_heads()
RETURNS TABLE (tenant text, head bigint)
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''
AS $$
BEGIN
{heads}
END $$"""


def logs_after_function(service: str, tenants: Iterable[str]) -> str:
    """Up to `in_limit` events after each tenant's position, each tenant's preceded by the
    event at or before that position (so every event can name the one before it, as
    `TenantLogs.read` does). One static query per tenant: each keeps its cached plan."""
    branches = "\n".join(
        f"""    WHEN '{t}' THEN RETURN QUERY
      SELECT '{t}'::text, e.notification_id, e.originator_id, e.originator_version,
             e.topic, e.state
      FROM {tenant_schema(service, t)}.{events_table(service)} e
      WHERE e.notification_id >= (
          SELECT coalesce(max(m.notification_id), 0)
          FROM {tenant_schema(service, t)}.{events_table(service)} m
          WHERE m.notification_id <= in_after[k])
      ORDER BY e.notification_id LIMIT in_limit + 1;"""
        for t in tenants
    )
    return f"""CREATE OR REPLACE FUNCTION {service}.logs_after(
    in_tenants text[], in_after bigint[], in_limit int)
RETURNS TABLE (tenant text, notification_id bigint, originator_id uuid,
               originator_version bigint, topic text, state bytea)
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''
AS $$
BEGIN
  FOR k IN 1 .. coalesce(cardinality(in_tenants), 0) LOOP
    PERFORM set_config('app.tenant_id', in_tenants[k], true);
    CASE in_tenants[k]
{branches}
    END CASE;
  END LOOP;
END $$"""


async def grant_log_access(
    conn: DbConnection, service: str, tenants: Iterable[str], role: str
) -> None:
    """Give `role` (the services' login) its access to `service`'s tenant logs; run by the
    owner after the tables exist. Policies are created once: `ALTER TABLE` and `CREATE
    POLICY` lock the table, which running replicas are appending to."""
    tenants = sorted(tenants)
    schemas = [tenant_schema(service, t) for t in tenants]
    tables = {events_table(service), "idempotency_keys"}
    present = {
        (r["schema"], r["table"]): (
            r["rls"],
            dict(zip(r["policies"], r["conditions"], strict=True)),
        )
        for r in await conn.fetch(
            """SELECT n.nspname AS schema, c.relname AS table, c.relrowsecurity AS rls,
                      array(SELECT polname FROM pg_policy WHERE polrelid = c.oid
                            ORDER BY polname) AS policies,
                      array(SELECT coalesce(pg_get_expr(polqual, polrelid),
                                            pg_get_expr(polwithcheck, polrelid))
                            FROM pg_policy WHERE polrelid = c.oid ORDER BY polname) AS conditions
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'r'""",
            schemas,
        )
    }
    async with conn.transaction():
        await conn.execute(log_tenant_function(service))
        await conn.execute(f"GRANT EXECUTE ON FUNCTION {service}.log_tenant_is(text) TO {role}")
        for tenant, schema in zip(tenants, schemas, strict=True):
            await conn.execute(
                f"""GRANT USAGE ON SCHEMA {schema} TO {role};
                    GRANT SELECT, INSERT, UPDATE ON {schema}.{events_table(service)} TO {role};
                    GRANT SELECT, INSERT ON {schema}.idempotency_keys TO {role};
                    GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};"""
            )
            condition = f"{service}.log_tenant_is('{tenant}'::text)"
            for table in sorted(tables):
                rls, policies = present[(schema, table)]
                if not rls:
                    await conn.execute(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY")
                for name, (command, clause) in _POLICIES.items():
                    if name not in policies:
                        await conn.execute(
                            f"CREATE POLICY {name} ON {schema}.{table} {command} "
                            f"{clause} ({condition})"
                        )
                    elif "log_tenant_is" not in policies[name]:
                        # A log whose policy still makes the comparison itself (before
                        # `log_tenant_is`): once, on the first start after the upgrade.
                        await conn.execute(
                            f"ALTER POLICY {name} ON {schema}.{table} {clause} ({condition})"
                        )
        await conn.execute(log_heads_function(service, tenants))
        await conn.execute(f"GRANT EXECUTE ON FUNCTION {service}.log_heads() TO {role}")
        await conn.execute(logs_after_function(service, tenants))
        await conn.execute(
            f"GRANT EXECUTE ON FUNCTION {service}.logs_after(text[], bigint[], int) TO {role}"
        )
