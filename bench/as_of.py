"""A record as of a date: the read's latency for a record with 1,000 events.

    python -m bench.as_of [--events 1000] [--reads 1000]

Registers one institution and renames it until it has `--events` events (through the
registry's bus, in process), lets the `snapshots` projection take its snapshots (one per
`SNAPSHOT_INTERVAL` versions), then reads it as of `--reads` moments drawn at random
between its first and its last event, each read in its own tenant transaction as the route
runs it — the kernel function (`shared.audit.as_of.record_as_of`), in process:

- with snapshots: from the latest snapshot at or before the moment, then its events;
- without snapshots: every event from the first;
- the limit: reading the record's current row from its read model (one indexed SELECT in
  the same kind of transaction), measured in the same run.

Then the same through the HTTP layer, the service's app called in process (no socket, a
token verified, guards, problem details, JSON): `GET …/institutions/{id}?as_of=` against
`GET …/institutions/{id}` (the current row, the limit). Each kind of read runs in rounds
interleaved with the others, so load from other work on the machine falls on all alike;
compare the ratios to the limit rather than the absolute figures.
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
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse, urlunparse
from uuid import UUID

import asyncpg
import httpx
import msgspec

from bench.commands import _delete_streams
from services.bootstrap import build_runtime
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.domain.institution import InstitutionType, Owner
from services.registry.projections.institutions import get_institution
from shared.audit.as_of import record_as_of
from shared.audit.snapshots import SNAPSHOT_INTERVAL
from shared.auth import Role, mint_dev_token
from shared.db.pool import tenant_transaction
from shared.devstack.stack import DevStack
from shared.eventstore.context import CommandContext
from shared.http.app import create_app
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


Read = Callable[[], Awaitable[object]]


async def _timed(kinds: dict[str, list[Read]], rounds: int = 10) -> dict[str, list[float]]:
    """Each kind's reads, in `rounds` rounds taking turns (a burst of load from elsewhere
    falls on every kind alike): their latencies in ms, by kind."""
    took: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind, reads in kinds.items():
            share = len(reads) // rounds
            for read in reads[round_ * share : (round_ + 1) * share]:
                start = time.perf_counter()
                await read()
                took[kind].append((time.perf_counter() - start) * 1000)
    return took


def _p50_p99(took: list[float]) -> tuple[float, float]:
    return statistics.median(took), statistics.quantiles(took, n=100)[98]


def _line(label: str, took: list[float], limit: list[float]) -> str:
    (p50, p99), (limit_p50, limit_p99) = _p50_p99(took), _p50_p99(limit)
    return (
        f"  {label:<26} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
        f"(the limit's x{p50 / limit_p50:4.1f} at p50, x{p99 / limit_p99:4.1f} at p99)"
    )


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
                    return await get_institution(conn, record, day=date.today())

            token = mint_dev_token(settings, sub="bench", tenant=TENANT, roles=[Role.WILAYAH_ADMIN])
            http = httpx.AsyncClient(
                # The app without its lifespan: the runtime is started already.
                transport=httpx.ASGITransport(app=cast(Any, create_app(runtime))),
                base_url="http://registry",
                headers={"Authorization": f"Bearer {token}"},
            )
            url = f"/v1/tenants/{TENANT}/institutions/{record}"

            async def http_get(params: dict[str, str]) -> object:
                answer = await http.get(url, params=params)
                assert answer.status_code == 200, answer.text
                return answer

            # Warm up connections and statement caches.
            warm: list[Read] = [
                lambda: as_of(last, True),
                lambda: as_of(last, False),
                current,
                lambda: http_get({"as_of": last.isoformat()}),
                lambda: http_get({}),
            ]
            await _timed({"warm": warm * 5}, rounds=1)
            took = await _timed(
                {
                    "limit": [current] * reads,
                    "snapshots": [functools.partial(as_of, w, True) for w in moments],
                    "events": [functools.partial(as_of, w, False) for w in moments],
                    "http limit": [functools.partial(http_get, {})] * reads,
                    "http as of": [
                        functools.partial(http_get, {"as_of": w.isoformat()}) for w in moments
                    ],
                }
            )
            await http.aclose()
            print(
                f"as of a date: one record with {events} events, snapshots every "
                f"{SNAPSHOT_INTERVAL} versions, {reads} reads of each kind at random moments; "
                "machine shared with other work, compare ratios"
            )
            print("kernel function in process (no HTTP):")
            print(_line("limit: current row", took["limit"], took["limit"]))
            print(_line("as of, with snapshots", took["snapshots"], took["limit"]))
            print(_line("as of, without snapshots", took["events"], took["limit"]))
            print("through the service's HTTP app, in process (no socket):")
            print(_line("limit: GET current row", took["http limit"], took["http limit"]))
            print(_line("GET ?as_of=", took["http as of"], took["http limit"]))
        finally:
            await runtime.stop()
            await _delete_streams(stack.nats_url, settings.nats_prefix)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.reads))


if __name__ == "__main__":
    main()
