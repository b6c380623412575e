"""Schema migrations: the kernel's bookkeeping tables, each service's read models (plain SQL
files applied once, in name order) and the event-store schema of every tenant."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from shared.db.pool import DbConnection

# Serialises concurrent migrations (several services starting at once).
_MIGRATION_LOCK = 0x6D706B73


def _sql(name: str) -> str:
    return resources.files("shared.db").joinpath("sql", name).read_text("utf-8")


async def migrate_read_side(
    conn: DbConnection, service: str, migrations: Traversable, app_role: str
) -> list[str]:
    """Apply the kernel tables and the service's pending migrations and grant `app_role`
    (the services' login, `shared.db.roles`) what it needs on them; returns what ran."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
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
        await conn.execute(f"GRANT USAGE ON SCHEMA {service} TO {app_role}")
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {service} TO {app_role}"
        )
    return applied
