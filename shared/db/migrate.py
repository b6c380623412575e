"""Schema migrations: the kernel's bookkeeping tables, each service's read models (plain SQL
files applied once, in name order) and the event-store schema of every tenant."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from shared.db.pool import APP_ROLE, DbConnection

# Serialises concurrent migrations (several services starting at once).
_MIGRATION_LOCK = 0x6D706B73


def _sql(name: str) -> str:
    return resources.files("shared.db").joinpath("sql", name).read_text("utf-8")


async def migrate_read_side(conn: DbConnection, service: str, migrations: Traversable) -> list[str]:
    """Apply the kernel tables and the service's pending migrations; returns what ran."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        # Roles are cluster-wide: another database may be creating it at the same moment.
        await conn.execute(
            f"""DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS;
                  END IF;
                  IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
                    EXECUTE 'GRANT {APP_ROLE} TO ' || quote_ident(current_user);
                  END IF;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"""
        )
        await conn.execute(_sql("kernel.sql").format(schema=service))
        done = {
            r["name"] for r in await conn.fetch(f"SELECT name FROM {service}.schema_migrations")
        }
        files = sorted(
            (f for f in migrations.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
        )
        for file in files:
            if file.name in done:
                continue
            await conn.execute(file.read_text("utf-8"))
            await conn.execute(
                f"INSERT INTO {service}.schema_migrations (name) VALUES ($1)", file.name
            )
            applied.append(file.name)
        await conn.execute(f"GRANT USAGE ON SCHEMA {service} TO {APP_ROLE}")
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {service} TO {APP_ROLE}"
        )
    return applied
