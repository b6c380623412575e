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

Every tenant's head (the last position, a number) stays readable in one round trip through
`<service>.log_heads()`, an ordinary (SECURITY INVOKER) function that names each tenant in
turn: the relay and the projections poll it for all 38 logs every second.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.db.pool import DbConnection
from shared.eventstore.stores import events_table, tenant_schema

_POLICIES = {
    "tenant_read": "FOR SELECT USING ({condition})",
    "tenant_append": "FOR INSERT WITH CHECK ({condition})",
}


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
        (r["schema"], r["table"]): (r["rls"], set(r["policies"]))
        for r in await conn.fetch(
            """SELECT n.nspname AS schema, c.relname AS table, c.relrowsecurity AS rls,
                      array(SELECT polname FROM pg_policy WHERE polrelid = c.oid) AS policies
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'r'""",
            schemas,
        )
    }
    async with conn.transaction():
        for tenant, schema in zip(tenants, schemas, strict=True):
            await conn.execute(
                f"""GRANT USAGE ON SCHEMA {schema} TO {role};
                    GRANT SELECT, INSERT, UPDATE ON {schema}.{events_table(service)} TO {role};
                    GRANT SELECT, INSERT ON {schema}.idempotency_keys TO {role};
                    GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};"""
            )
            condition = f"current_setting('app.tenant_id', true) = '{tenant}'"
            for table in sorted(tables):
                rls, policies = present[(schema, table)]
                if not rls:
                    await conn.execute(f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY")
                for name, body in _POLICIES.items():
                    if name not in policies:
                        await conn.execute(
                            f"CREATE POLICY {name} ON {schema}.{table} "
                            + body.format(condition=condition)
                        )
        await conn.execute(log_heads_function(service, tenants))
        await conn.execute(f"GRANT EXECUTE ON FUNCTION {service}.log_heads() TO {role}")
