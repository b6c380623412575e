"""How fast `mpks audit verify` checks a log: events/s over one tenant's log, next to the
rate of reading the same rows without checking them (the limit), in the same run.

    python -m bench.verify_rate [--events 200000]

Fills tenant 35 of the registry through `append_events` (1,000 events per call, so the
chain is the one the command path builds), signs one checkpoint at the head, then times
one read of the whole log through the same cursor and batches (the limit) and one
verification (`shared.audit.verify.verify_log`: the chain recomputed, the checkpoint's
signature checked).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse
from uuid import uuid4

import asyncpg

from services.bootstrap import SERVICES
from shared.audit.signing import sign, signing_key, trusted_keys
from shared.audit.verify import BATCH, verify_log
from shared.devstack.stack import DevStack
from shared.eventstore.stores import events_table, tenant_schema
from shared.runtime import migrate_service
from shared.settings import Settings

SERVICE = "registry"
TENANT = "35"
# The size of a typical stored event here (JSON envelope with metadata and a few fields).
STATE = (
    b'{"v":1,"meta":{"actor":"bench","correlation_id":"c-0123456789"},"data":{'
    + (b'"name":"LKSA Muhammadiyah","kind":"lksa","pdm":"3578","owner":"muhammadiyah"' * 3)
    + b"}}"
)


async def _fill(conn: asyncpg.Connection[Any], events: int) -> None:
    call = (
        f"SELECT * FROM {tenant_schema(SERVICE, TENANT)}.append_events("
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )
    for start in range(0, events, 1000):
        n = min(1000, events - start)
        # One command of `n` events, without Idempotency-Key or consulted records.
        await conn.fetchrow(
            call,
            TENANT,
            [1] * n,
            [uuid4() for _ in range(n)],
            [1] * n,
            ["Institution.Registered"] * n,
            [STATE] * n,
            [None],
            [None],
            [None],
            [],
            [],
            [],
        )


async def _read_only(conn: asyncpg.Connection[Any]) -> int:
    table = f"{tenant_schema(SERVICE, TENANT)}.{events_table(SERVICE)}"
    count = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(
            "SELECT notification_id, originator_id, originator_version, topic, state, hash "
            f"FROM {table} WHERE notification_id > $1 ORDER BY notification_id",
            0,
        )
        while rows := await cursor.fetch(BATCH):
            count += len(rows)
    return count


async def main(events: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-verify-"))
    with DevStack(
        workdir,
        os.environ.get("MPKS_DATABASE_URL") or None,
        os.environ.get("MPKS_NATS_URL") or None,
    ) as stack:
        database = f"mpks_bench_verify_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        try:
            settings = Settings(database_url=url, nats_url=stack.nats_url)
            await migrate_service(SERVICES[SERVICE].define(), url, settings)
            conn = await asyncpg.connect(url)
            try:
                started = time.perf_counter()
                await _fill(conn, events)
                filled = time.perf_counter() - started
                head = await conn.fetchrow(
                    f"SELECT notification_id, hash FROM {tenant_schema(SERVICE, TENANT)}."
                    f"{events_table(SERVICE)} ORDER BY notification_id DESC LIMIT 1"
                )
                assert head is not None
                checkpoint = sign(signing_key(settings), SERVICE, TENANT, head[0], bytes(head[1]))
                started = time.perf_counter()
                assert await _read_only(conn) == events
                read = time.perf_counter() - started
                started = time.perf_counter()
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    report = await verify_log(
                        conn, SERVICE, TENANT, checkpoints=[checkpoint], keys=trusted_keys(settings)
                    )
                verified = time.perf_counter() - started
            finally:
                await conn.close()
            assert report.intact, report.summary
            assert report.events == events
            print(
                f"verify of one log of {events:,} events ({len(STATE)}-byte states), "
                f"{os.cpu_count()} cores"
            )
            print(f"  filled through append_events:   {events / filled:12,.0f} events/s")
            print(
                f"  read only (cursor, same batches):{events / read:12,.0f} events/s  (the limit)"
            )
            print(
                f"  verify (chain + checkpoint):     {events / verified:12,.0f} events/s  "
                f"({read / verified:.2f} of the limit)"
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().events))
