"""Read-side database access (asyncpg): pools, tenant transactions under RLS, migrations."""
