"""A record as of a date: the read's latency for a record with 1,000 events.

    python -m bench.as_of [--events 1000] [--reads 400]

Registers one institution and renames it until it has `--events` events (through the
registry's bus, in process), lets the `snapshots` projection take its snapshots (one per
50 versions), then reads it as of `--reads` moments drawn at random between its first and
its last event, each read in its own tenant transaction as the route runs it — the kernel
function (`shared.audit.as_of.record_as_of`), in process, no HTTP:

- with snapshots: from the latest snapshot at or before the moment, then its events;
- without snapshots: every event from the first;
- the limit: reading the record's current row from its read model (one indexed SELECT in
  the same kind of transaction), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse
from uuid import UUID

import asyncpg
import msgspec

from bench.commands import _delete_streams
from services.bootstrap import build_runtime
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import InstitutionType, Owner
from services.registry.projections.institutions import get_institution
from shared.audit.as_of import record_as_of
from shared.db.pool import tenant_transaction
from shared.devstack.stack import DevStack
from shared.eventstore.context import CommandContext
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Accepted
from shared.settings import Settings

TENANT = "35"


def _context() -> CommandContext:
    return CommandContext(tenant=TENANT, actor="bench", correlation_id=secrets.token_hex(8))


async def _long_record(runtime: ServiceRuntime, events: int) -> UUID:
    outcome = await runtime.bus.execute(
        RegisterInstitution(
            name="LKSA 0", kind=InstitutionType.LKSA, owner=Owner.MUHAMMADIYAH, pdm="3578"
        ),
        _context(),
    )
    record = msgspec.json.decode(outcome.reply, type=Accepted).id
    for n in range(1, events):
        await runtime.bus.execute(
            RenameInstitution(institution_id=record, name=f"LKSA {n}"), _context()
        )
    return record


async def _timed(reads: list[Callable[[], Awaitable[object]]]) -> list[float]:
    took: list[float] = []
    for read in reads:
        start = time.perf_counter()
        await read()
        took.append((time.perf_counter() - start) * 1000)
    return took


def _line(label: str, took: list[float], limit: float) -> str:
    cuts = statistics.quantiles(took, n=100)
    p50, p99 = statistics.median(took), cuts[98]
    return f"{label:<28} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  (p50 {p50 / limit:5.1f}x the limit)"


async def run(events: int, reads: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-as-of-"))
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    with DevStack(workdir, env_db, os.environ.get("MPKS_NATS_URL") or None) as stack:
        database = f"mpks_bench_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        db_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        settings = Settings(
            database_url=db_url,
            nats_url=stack.nats_url,
            nats_prefix=f"mpksbench{secrets.token_hex(2)}",
        )
        runtime = build_runtime("registry", settings, run_background=False)
        await runtime.start()
        try:
            record = await _long_record(runtime, events)
            await runtime.projections.catch_up()
            async with runtime.db.acquire() as conn:
                times = [e.occurred_at for e in await runtime.logs.of_record(conn, TENANT, record)]
            spread = random.Random(9)  # noqa: S311 (random moments, not secrets)
            first, last = times[0], times[-1]
            moments: list[datetime] = [
                first + (last - first) * spread.random() for _ in range(reads)
            ]

            async def as_of(when: datetime, use_snapshots: bool) -> object:
                async with tenant_transaction(runtime.db, TENANT) as conn:
                    return await record_as_of(
                        conn, runtime.snapshots, TENANT, record, when, use_snapshots=use_snapshots
                    )

            async def current() -> object:
                async with tenant_transaction(runtime.db, TENANT) as conn:
                    return await get_institution(conn, record)

            # Warm up connections and statement caches.
            await _timed([lambda: as_of(last, True), lambda: as_of(last, False), current] * 5)
            limit = await _timed([current] * reads)
            snap = await _timed([functools.partial(as_of, w, True) for w in moments])
            full = await _timed([functools.partial(as_of, w, False) for w in moments])
            limit_p50 = statistics.median(limit)
            print(
                f"as of a date: one record with {events} events, {reads} reads at random "
                "moments, kernel function in process (no HTTP); machine shared with other "
                "work, compare ratios"
            )
            print(_line("limit: current row", limit, limit_p50))
            print(_line("as of, with snapshots", snap, limit_p50))
            print(_line("as of, without snapshots", full, limit_p50))
        finally:
            await runtime.stop()
            await _delete_streams(stack.nats_url, settings.nats_prefix)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.reads))


if __name__ == "__main__":
    main()
