"""The services' PostgreSQL login: not the owner, not a superuser, nothing to escape to; its
pooled connections carry no session state from one holder to the next; and it reads and
appends one tenant's event log at a time, never changes one.

Tenants 81 and 82 belong to this module.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import anyio.to_thread
import asyncpg
import pytest

from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import InstitutionType, Owner
from shared.db.pool import create_pool, tenant_transaction
from shared.db.roles import APP_ROLE, UnsafeLogin, app_database_url, ensure_app_login
from shared.devstack.stack import DevStack
from shared.eventstore.context import CommandContext
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import fresh_database, own_streams, running

pytestmark = pytest.mark.timeout(240)

LOG = "registry_t{}.registry_events"
KEYS = "registry_t{}.idempotency_keys"


@pytest.fixture(scope="module")
async def registry(settings: Settings) -> AsyncIterator[ServiceRuntime]:
    async with running("registry", settings) as runtime:
        yield runtime


async def register(runtime: ServiceRuntime, tenant: str, key: str | None = None) -> None:
    ctx = CommandContext(tenant=tenant, actor="officer", correlation_id=f"corr-{uuid4()}")
    outcome = await runtime.bus.execute(
        RegisterInstitution(
            name=f"Panti Asuhan {tenant}",
            kind=InstitutionType.LKSA,
            owner=Owner.MUHAMMADIYAH,
            pdm=f"{tenant}71",
            address="Jl. Pattimura 1",
        ),
        ctx,
        idempotency_key=key,
    )
    assert outcome.position is not None, outcome


async def test_the_services_log_in_as_a_role_that_cannot_become_another(
    registry: ServiceRuntime,
) -> None:
    async with registry.db.acquire() as conn:
        assert await conn.fetchval("SELECT session_user") == APP_ROLE
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT current_user") == APP_ROLE
        assert (
            await conn.fetchval(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            is False
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET ROLE postgres")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET SESSION AUTHORIZATION postgres")
        # It owns nothing, so no table's policies exempt it and it can change no table.
        assert not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM pg_class WHERE relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user))"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE registry.institutions DISABLE ROW LEVEL SECURITY")

    def event_store_login() -> tuple[str, str]:
        with registry.stores.get("81").recorder.datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT session_user AS who, current_setting('app.tenant_id') AS tenant"
            ).fetchone()
        assert row is not None
        return str(row["who"]), str(row["tenant"])

    # The event store's connections too, each naming the tenant whose log it serves.
    assert await anyio.to_thread.run_sync(event_store_login) == (APP_ROLE, "81")


async def test_session_state_does_not_survive_a_pool_release(registry: ServiceRuntime) -> None:
    size = registry.db.get_max_size()
    async with AsyncExitStack() as held:
        # Every connection of the pool, so the next round surely reuses each of them.
        conns = [await held.enter_async_context(registry.db.acquire()) for _ in range(size)]
        for conn in conns:
            await conn.execute("SET app.tenant_id = '81'")
            await conn.execute("SET search_path = registry_t81")
    async with AsyncExitStack() as held:
        conns = [await held.enter_async_context(registry.db.acquire()) for _ in range(size)]
        for conn in conns:
            assert not await conn.fetchval("SELECT current_setting('app.tenant_id', true)")
            assert await conn.fetchval("SHOW search_path") == '"$user", public'
            assert await conn.fetch("SELECT tenant_id FROM registry.institutions") == []


async def test_a_tenants_event_log_is_readable_only_in_that_tenant(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    await register(registry, "81", key=f"k-{uuid4()}")
    await register(registry, "82", key=f"k-{uuid4()}")
    assert await owner.fetchval(f"SELECT count(*) FROM {LOG.format('81')}") >= 1

    async with registry.db.acquire() as conn:
        # No tenant named: nothing, whoever asks.
        for table in (LOG, KEYS):
            assert await conn.fetchval(f"SELECT count(*) FROM {table.format('81')}") == 0
    async with tenant_transaction(registry.db, "82") as conn:
        for table in (LOG, KEYS):
            assert await conn.fetchval(f"SELECT count(*) FROM {table.format('81')}") == 0
            assert await conn.fetchval(f"SELECT count(*) FROM {table.format('82')}") >= 1
        # Nor can it write into another tenant's log.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                f"INSERT INTO {LOG.format('81')} (originator_id, originator_version, topic, "
                "state) VALUES (gen_random_uuid(), 1, 'Forged', '\\x00')"
            )

    # The readers still see their own tenant's log: the feed, the relay, the projections.
    async with registry.db.acquire() as conn:
        events = await registry.logs.read(conn, "81", after=0, limit=10)
        heads = await registry.logs.heads(conn)
        # Reading heads leaves the caller's (unset) tenant as it was.
        assert not await conn.fetchval("SELECT current_setting('app.tenant_id', true)")
    async with tenant_transaction(registry.db, "82") as conn:
        await registry.logs.heads(conn)
        # ... and a tenant the caller named stays named.
        assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") == "82"
    assert events
    assert {e.tenant for e in events} == {"81"}
    assert heads["81"] == events[-1].position
    assert heads["82"] >= 1


async def test_stored_events_cannot_be_changed_or_removed_by_the_services(
    registry: ServiceRuntime, owner: asyncpg.Connection[Any]
) -> None:
    await register(registry, "81")
    before = await owner.fetch(f"SELECT * FROM {LOG.format('81')} ORDER BY notification_id")
    async with tenant_transaction(registry.db, "81") as conn:
        # The login holds UPDATE on the log only for the append's table lock; no policy
        # lets an update reach a row.
        assert await conn.execute(f"UPDATE {LOG.format('81')} SET topic = 'Forged'") == "UPDATE 0"
    for statement in (
        f"DELETE FROM {LOG.format('81')}",
        f"TRUNCATE {LOG.format('81')}",
        f"UPDATE {KEYS.format('81')} SET status = 500",
        f"DELETE FROM {KEYS.format('81')}",
    ):
        async with tenant_transaction(registry.db, "81") as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    after = await owner.fetch(f"SELECT * FROM {LOG.format('81')} ORDER BY notification_id")
    assert after == before


async def test_a_login_that_policies_would_not_bind_is_refused(settings: Settings) -> None:
    assert settings.database_url is not None
    # The owner (a superuser here) is no login for the services.
    with pytest.raises(UnsafeLogin, match="superuser"):
        await create_pool(settings.database_url, max_size=1)
    pool = await create_pool(app_database_url(settings, settings.database_url), max_size=1)
    await pool.close()


def test_the_app_login_is_derived_in_development_and_required_in_production() -> None:
    owner = "postgresql://owner:secret@db.example:5432/mpks?sslmode=require"
    derived = app_database_url(Settings(), owner)
    assert derived.startswith(f"postgresql://{APP_ROLE}:")
    assert derived.endswith("@db.example:5432/mpks?sslmode=require")
    assert "secret" not in derived
    production = Settings(jwt_secret="a-real-key")
    with pytest.raises(UnsafeLogin, match="MPKS_APP_DATABASE_URL"):
        app_database_url(production, owner)
    given = "postgresql://svc:pw@db.example:5432/mpks"
    assert app_database_url(production.replace(app_database_url=given), owner) == given


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


async def test_a_given_app_login_is_created_once_however_many_migrate_at_once(
    backing: DevStack, settings: Settings
) -> None:
    """An operator's MPKS_APP_DATABASE_URL with its own role name: several databases of
    the cluster migrating at the same moment (roles are cluster-wide) all succeed, and the
    service runs on that login."""
    role = f"mpks_test_{secrets.token_hex(4)}"
    try:
        async with (
            fresh_database(backing.database_url, "roles_a") as first,
            fresh_database(backing.database_url, "roles_b") as second,
            own_streams(str(settings.nats_url), "roles") as prefix,
        ):
            app_url = _as(first, role, "s3cret'quote")

            async def migrate_in(database_url: str) -> str:
                conn = await asyncpg.connect(database_url)
                try:
                    async with conn.transaction():
                        return await ensure_app_login(conn, app_url)
                finally:
                    await conn.close()

            names = await asyncio.gather(*(migrate_in(db) for db in (first, second) * 3))
            assert set(names) == {role}
            own = settings.replace(database_url=first, app_database_url=app_url, nats_prefix=prefix)
            async with running("registry", own) as runtime:
                await register(runtime, "81")
                async with runtime.db.acquire() as conn:
                    assert await conn.fetchval("SELECT session_user") == role
                    heads = await runtime.logs.heads(conn)
                assert heads["81"] == 1
    finally:
        # The databases (and the grants in them) are gone; the role is cluster-wide.
        admin = await asyncpg.connect(backing.database_url)
        try:
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await admin.close()


async def test_the_role_of_earlier_versions_gets_its_login(
    backing: DevStack, owner: asyncpg.Connection[Any]
) -> None:
    """Earlier versions made the services' role NOLOGIN and entered it with SET ROLE from a
    superuser login; migrating turns it into the services' own, unprivileged login."""
    role = f"mpks_test_{secrets.token_hex(4)}"
    await owner.execute(f"CREATE ROLE {role} NOLOGIN NOBYPASSRLS")
    try:
        async with owner.transaction():
            await ensure_app_login(owner, _as(backing.database_url, role, "pw"))
        row = await owner.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
            "FROM pg_roles WHERE rolname = $1",
            role,
        )
        assert row is not None
        assert dict(row) == {
            "rolcanlogin": True,
            "rolsuper": False,
            "rolbypassrls": False,
            "rolcreaterole": False,
            "rolcreatedb": False,
        }
    finally:
        await owner.execute(f"DROP ROLE IF EXISTS {role}")
