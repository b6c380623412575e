"""The SQL ceiling of an append: what PostgreSQL alone allows, without HTTP or the domain.

    python -m bench.append_sql [--seconds 5] [--connections 16]

Raw asyncpg, `--connections` connections as the services' login, each appending one
event with its Idempotency-Key per command to the registry's logs, spread over the 38
tenants (and once on one hot tenant):

- "before": the statements the library's recorder sends today, in its two round trips
  (tenant, `SET LOCAL lock_timeout`, `LOCK TABLE`, `NOTIFY`; then the events, the key,
  COMMIT);
- "function + NOTIFY inside": one call to `append_events` with a `pg_notify` in the same
  statement (one round trip; what a NOTIFY in the function would cost);
- "function": one call to `append_events`, no NOTIFY (the command path now, one command
  per call, with the hash chain: the head's hash read under the lock, each event's SHA-256);
- "function, 8 commands per call": what group commit does when commands arrive together
  (`shared.eventstore.appends`), counted per command;
- "function without the chain": the same call to the function as it was before the chain
  (positions from the sequence, no hash): the chain's cost per command is the difference;
- "function + coalesced notify": the same, plus one `pg_notify` per 5 ms burst from a
  connection of its own (what the service sends for other processes);
- "raw INSERT": one plain row per transaction, no lock (the machine's limit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse
from uuid import uuid4

import asyncpg

from services.bootstrap import SERVICES
from shared.db.roles import app_database_url
from shared.devstack.stack import DevStack
from shared.eventstore.stores import events_table, tenant_schema
from shared.eventstore.wakeups import AppendNotifier
from shared.runtime import migrate_service
from shared.settings import Settings
from shared.tenancy import province_codes

SERVICE = "registry"
STATE = b'{"v":1,"meta":{},"data":{}}'

# An append of some commands; how many.
Append = Callable[["asyncpg.Connection[Any]", str, int], Awaitable[int]]
GROUP = 8


def _key(n: int) -> str:
    return f"k-{secrets.token_hex(6)}-{n}"


async def before(conn: asyncpg.Connection[Any], tenant: str, n: int) -> int:
    schema = tenant_schema(SERVICE, tenant)
    table = f"{schema}.{events_table(SERVICE)}"
    # Literal values: a simple-query script is one round trip, as psycopg's pipeline is.
    await conn.execute(
        f"BEGIN; SELECT set_config('app.tenant_id', '{tenant}', true); "
        f"SET LOCAL lock_timeout = '5s'; LOCK TABLE {table} IN EXCLUSIVE MODE; "
        f"NOTIFY {events_table(SERVICE)}, '{tenant}'"
    )
    await conn.execute(
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
        f"VALUES ('{uuid4()}', 1, 'Institution.Registered', '\\x{STATE.hex()}'); "
        f"INSERT INTO {schema}.idempotency_keys (key, fingerprint, status, body) "
        f"VALUES ('{_key(n)}', 'f', 0, ''); COMMIT"
    )
    return 1


def _unchained(tenant: str) -> str:
    """`append_events` as it was before the hash chain (issue 9), beside the real one."""
    schema = tenant_schema(SERVICE, tenant)
    table = f"{schema}.{events_table(SERVICE)}"
    return f"""
CREATE FUNCTION {schema}.append_events_unchained(
    in_tenant text, in_ids uuid[], in_versions bigint[], in_topics text[], in_states bytea[],
    in_key text, in_fingerprint text, in_reply bytea)
RETURNS bigint[] LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog SET app.tenant_id = ''
AS $$
DECLARE
  positions bigint[] := '{{}}';
BEGIN
  PERFORM set_config('app.tenant_id', in_tenant, true);
  LOCK TABLE {table} IN EXCLUSIVE MODE;
  WITH inserted AS (
    INSERT INTO {table} (originator_id, originator_version, topic, state)
    SELECT * FROM unnest(in_ids, in_versions, in_topics, in_states)
    RETURNING notification_id)
  SELECT array_agg(notification_id ORDER BY notification_id) INTO positions FROM inserted;
  INSERT INTO {schema}.idempotency_keys (key, fingerprint, status, body)
  VALUES (in_key, in_fingerprint, 0, in_reply);
  RETURN positions;
END $$;"""


async def function_unchained(conn: asyncpg.Connection[Any], tenant: str, n: int) -> int:
    await conn.fetchval(
        f"SELECT {tenant_schema(SERVICE, tenant)}.append_events_unchained("
        "$1, $2, $3, $4, $5, $6, $7, $8)",
        tenant,
        [uuid4()],
        [1],
        ["Institution.Registered"],
        [STATE],
        _key(n),
        "f",
        b"",
    )
    return 1


async def _reset(owner: asyncpg.Connection[Any]) -> None:
    """Empty logs before each scenario: each starts from the same table sizes, and the
    sequence-numbered variants never collide with the chain's `head + 1` numbering."""
    tables = [
        f"{tenant_schema(SERVICE, t)}.{name}"
        for t in sorted(province_codes())
        for name in (events_table(SERVICE), "idempotency_keys")
    ]
    await owner.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")


def _call(tenant: str) -> str:
    schema = tenant_schema(SERVICE, tenant)
    return (
        f"SELECT * FROM {schema}.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )


def _arguments(tenant: str, n: int, commands: int) -> list[object]:
    """`commands` commands of one event and a key each."""
    return [
        tenant,
        list(range(1, commands + 1)),
        [uuid4() for _ in range(commands)],
        [1] * commands,
        ["Institution.Registered"] * commands,
        [STATE] * commands,
        [_key(n * commands + c) for c in range(commands)],
        ["f"] * commands,
        [b""] * commands,
        # No records consulted.
        [],
        [],
        [],
    ]


async def function(conn: asyncpg.Connection[Any], tenant: str, n: int) -> int:
    await conn.fetchrow(_call(tenant), *_arguments(tenant, n, 1))
    return 1


async def grouped(conn: asyncpg.Connection[Any], tenant: str, n: int) -> int:
    await conn.fetchrow(_call(tenant), *_arguments(tenant, n, GROUP))
    return GROUP


async def function_notify_inside(conn: asyncpg.Connection[Any], tenant: str, n: int) -> int:
    # pg_notify in the same statement: the same implicit transaction, one round trip.
    await conn.fetchrow(
        _call(tenant).replace("SELECT * ", "SELECT pg_notify($10, $1), * ", 1),
        *_arguments(tenant, n, 1),
        events_table(SERVICE),
    )
    return 1


async def raw_insert(conn: asyncpg.Connection[Any], tenant: str, n: int) -> int:
    await conn.execute("INSERT INTO bench_raw (id, name) VALUES ($1, $2)", uuid4(), tenant)
    return 1


async def _run(
    url: str,
    append: Append,
    tenants: list[str],
    connections: int,
    seconds: float,
    notifier: AppendNotifier | None = None,
) -> float:
    conns = [await asyncpg.connect(url) for _ in range(connections)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(i: int, conn: asyncpg.Connection[Any]) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            tenant = tenants[(i * 7 + n) % len(tenants)]
            done += await append(conn, tenant, n)
            if notifier is not None:
                notifier.notify(tenant)
            n += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    return done / (time.perf_counter() - start)


async def main(seconds: float, connections: int) -> None:
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-sql-"))
    with DevStack(workdir, env_db, os.environ.get("MPKS_NATS_URL") or None) as stack:
        database = f"mpks_bench_sql_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        owner_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        try:
            settings = Settings(database_url=owner_url, nats_url=stack.nats_url)
            await migrate_service(SERVICES[SERVICE].define(), owner_url, settings)
            app_url = app_database_url(settings, owner_url)
            owner = await asyncpg.connect(owner_url)
            await owner.execute(
                "CREATE TABLE bench_raw (id uuid PRIMARY KEY, name text NOT NULL); "
                f"GRANT INSERT ON bench_raw TO {urlparse(app_url).username}"
            )
            for tenant in sorted(province_codes()):
                await owner.execute(_unchained(tenant))
                await owner.execute(
                    f"GRANT EXECUTE ON FUNCTION {tenant_schema(SERVICE, tenant)}."
                    "append_events_unchained(text, uuid[], bigint[], text[], bytea[], text, "
                    f"text, bytea) TO {urlparse(app_url).username}"
                )
            everywhere = sorted(province_codes())
            pool = await asyncpg.create_pool(app_url, min_size=1, max_size=1)
            notifier = AppendNotifier(pool, events_table(SERVICE))
            notifier.start()
            print(
                f"SQL ceiling of one append (1 event + Idempotency-Key per command), "
                f"{connections} connections, {seconds:.0f}s each, {os.cpu_count()} cores"
            )
            scenarios: list[tuple[str, Append, AppendNotifier | None]] = [
                ("before: library's statements, 2 round trips", before, None),
                ("function + NOTIFY inside", function_notify_inside, None),
                ("function (no NOTIFY)", function, None),
                ("function without the chain", function_unchained, None),
                ("function + coalesced notify", function, notifier),
                (f"function, {GROUP} commands per call", grouped, None),
                ("raw INSERT", raw_insert, None),
            ]
            for label, tenants in (("38 tenants", everywhere), ("one hot tenant", ["31"])):
                for name, append, notify in scenarios:
                    await _reset(owner)
                    rate = await _run(app_url, append, tenants, connections, seconds, notify)
                    print(f"{label:<15} {name:<46} {rate:9,.0f} commands/s")
            await notifier.stop()
            await pool.close()
            await owner.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.connections))
