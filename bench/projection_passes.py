"""What the projection runner costs PostgreSQL: statements and their execution time per
pass, and events applied per second, for the registry's read models (its own, the access
log, the records' snapshots).

    python -m bench.projection_passes --database-url postgresql://postgres@127.0.0.1:PORT/postgres

Needs a PostgreSQL server with `pg_stat_statements` loaded (`shared_preload_libraries`): not
the embedded stack's fixed ports, which other runs may be using. Two shapes of load:

- live: a few events in each of several tenants, then the pass a wake-up triggers
  (`catch_up(tenants)`), repeated: what the worker does under `make bench`;
- backlog: many events, then one full pass (`catch_up()`): a worker starting behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any
from urllib.parse import urlparse

import asyncpg

from bench.cpu import PostgresCpu
from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import InstitutionType, Owner
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from tests.helpers import context, fresh_database, own_streams, running

TENANTS = ["11", "12", "13", "14", "15", "16", "17", "18"]


class Statements:
    """Statements of one database while some work runs, from pg_stat_statements."""

    def __init__(self, conn: asyncpg.Connection[Any], cpu: PostgresCpu) -> None:
        self.conn = conn
        self.cpu = cpu
        # PostgreSQL's CPU seconds (its processes serving the database) and this process's
        # (the runner's), over every `measure`.
        self.cpu_seconds = 0.0
        self.own_cpu_seconds = 0.0
        # Per statement text: calls and execution time (ms), summed over every `measure`.
        self.by_query: dict[str, tuple[int, float]] = {}

    async def _totals(self) -> dict[str, tuple[int, float]]:
        rows = await self.conn.fetch(
            """SELECT query, calls, total_exec_time FROM pg_stat_statements
               WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND query NOT LIKE '%pg_stat_statements%'"""
        )
        return {r["query"]: (r["calls"], r["total_exec_time"]) for r in rows}

    async def measure(self, work: Any) -> tuple[int, float, float]:
        """Statements, their execution time (ms) and the wall time (s) of `await work()`."""
        before = await self._totals()
        cpu_before = await self.cpu.snapshot()
        began, own = time.perf_counter(), time.process_time()
        await work()
        wall = time.perf_counter() - began
        self.own_cpu_seconds += time.process_time() - own
        self.cpu_seconds += PostgresCpu.spent(cpu_before, await self.cpu.snapshot())
        calls = ms = 0.0
        for query, (n, t) in (await self._totals()).items():
            n0, t0 = before.get(query, (0, 0.0))
            if n > n0:
                seen = self.by_query.get(query, (0, 0.0))
                self.by_query[query] = (seen[0] + n - n0, seen[1] + t - t0)
                calls, ms = calls + n - n0, ms + t - t0
        return int(calls), ms, wall

    def top(self, commands: int) -> list[str]:
        """The statements per command, most frequent first."""
        ranked = sorted(self.by_query.items(), key=lambda item: -item[1][0])
        return [
            f"{n / commands:6.2f}/cmd {t / commands:7.4f} ms/cmd  {' '.join(q.split())[:110]}"
            for q, (n, t) in ranked
        ]


async def append(runtime: ServiceRuntime, tenant: str, i: int) -> None:
    command = RegisterInstitution(
        name=f"LKSA Ukur {tenant}-{i}",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm=f"{tenant}71",
    )
    await runtime.bus.execute(command, context(tenant, "bench"))


async def live(
    runtime: ServiceRuntime, stats: Statements, rounds: int, per_tenant: int, show: bool = False
) -> dict[str, float]:
    statements = events = 0
    ms = wall = 0.0
    for r in range(rounds):
        await asyncio.gather(
            *(append(runtime, t, r * per_tenant + i) for t in TENANTS for i in range(per_tenant))
        )
        applied = 0

        async def wake_up() -> None:
            nonlocal applied
            applied = await runtime.projections.catch_up(TENANTS)

        n, t_ms, t_wall = await stats.measure(wake_up)
        statements, ms, wall, events = statements + n, ms + t_ms, wall + t_wall, events + applied
    passes = rounds * len(TENANTS)
    if show:
        print("\n".join(stats.top(rounds * len(TENANTS) * per_tenant)))
    commands = rounds * len(TENANTS) * per_tenant
    return {
        "tenant passes": passes,
        "commands": commands,
        "events applied (all projections)": events,
        "statements per tenant pass": round(statements / passes, 1),
        "statements per command": round(statements / commands, 1),
        "PG exec ms per command": round(ms / commands, 3),
        "PG CPU ms per command": round(stats.cpu_seconds * 1000 / commands, 3),
        "runner CPU ms per command": round(stats.own_cpu_seconds * 1000 / commands, 3),
        "commands projected per s": round(commands / wall),
    }


async def backlog(runtime: ServiceRuntime, stats: Statements, count: int) -> dict[str, float]:
    per_tenant = count // len(TENANTS)
    for i in range(per_tenant):
        await asyncio.gather(*(append(runtime, t, 10_000 + i) for t in TENANTS))
    applied = 0

    async def full_pass() -> None:
        nonlocal applied
        applied = await runtime.projections.catch_up()

    n, ms, wall = await stats.measure(full_pass)
    commands = per_tenant * len(TENANTS)
    return {
        "commands": commands,
        "events applied (all projections)": applied,
        "statements": n,
        "PG exec ms per command": round(ms / commands, 3),
        "PG CPU ms per command": round(stats.cpu_seconds * 1000 / commands, 3),
        "runner CPU ms per command": round(stats.own_cpu_seconds * 1000 / commands, 3),
        "commands projected per s": round(commands / wall),
    }


async def checkpoints(runtime: ServiceRuntime, stats: Statements) -> dict[str, float]:
    """The checkpointer's pass (every 5 s on the worker that leads it): one that signs every
    tenant log with events (the first, or once `checkpoint_every_events` came in), then an
    idle one (what it costs while no log is due)."""
    async with runtime.db.acquire() as conn:
        heads = await runtime.logs.heads(conn)
    signed: list[Any] = []

    async def signing() -> None:
        signed.extend(await runtime.checkpointer.checkpoint_due())

    n, ms, wall = await stats.measure(signing)
    verified = sum(heads[c.tenant] for c in signed)
    idle_n, idle_ms, idle_wall = await stats.measure(runtime.checkpointer.checkpoint_due)
    return {
        "signed": len(signed),
        "events verified": verified,
        "signing pass statements": n,
        "signing pass PG exec ms per event verified": round(ms / max(verified, 1), 4),
        "signing pass s": round(wall, 3),
        "idle pass statements": idle_n,
        "idle pass PG exec ms": round(idle_ms, 3),
        "idle pass ms": round(idle_wall * 1000, 1),
    }


async def main(server_url: str, nats_url: str, rounds: int, per_tenant: int, count: int) -> None:
    async with (
        fresh_database(server_url, "projbench") as url,
        own_streams(nats_url, "projbench") as prefix,
    ):
        settings = Settings(database_url=url, nats_url=nats_url, nats_prefix=prefix)
        async with running("registry", settings) as runtime:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                cpu = PostgresCpu(url, urlparse(url).path.lstrip("/"))
                cpu.ignored.add(await conn.fetchval("SELECT pg_backend_pid()"))

                def stats() -> Statements:
                    return Statements(conn, cpu)

                names = [p.name for p in runtime.projections.projections]
                await live(runtime, stats(), 2, per_tenant)  # warm-up: plans, caches
                results = {
                    "projections": names,
                    "live": await live(runtime, stats(), rounds, per_tenant, show=True),
                    "backlog": await backlog(runtime, stats(), count),
                    "checkpoints": await checkpoints(runtime, stats()),
                }
            finally:
                await conn.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-tenant", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.nats_url, args.rounds, args.per_tenant, args.backlog))
