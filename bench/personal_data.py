"""What personal data costs a command: sealing a worker's name under a key of its own.

    python -m bench.personal_data [--seconds 5]

HR's `RegisterWorker` through the service's bus on real PostgreSQL (no HTTP), 1 and 16
concurrent clients, spread over the 38 tenants, in two variants measured in the same run:

- "personal": as the service runs — every new worker is a new data subject, so each command
  makes and wraps a key, stores it with one more statement (`subject_keys_ensure`) before
  the append, and seals the name (AES-256-GCM);
- "plain": the same command with the name left unsealed (a catalogue that declares no
  personal field): the limit the first is compared with.

Then the CPU of the cryptography alone, per operation. A command on a record whose
subject's key is cached pays no round trip, only opening and sealing (the last lines).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg

from services.bootstrap import build_runtime
from services.hr.application.register_worker import RegisterWorker
from shared.devstack.stack import DevStack
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.context import CommandContext
from shared.eventstore.mapper import EnvelopeMapper
from shared.eventstore.unit_of_work import EventStoreUnitsOfWork
from shared.personal.cipher import new_data_key, open_value, seal_value, unwrap_key, wrap_key
from shared.personal.fields import Personal
from shared.runtime import ServiceRuntime
from shared.settings import Settings
from shared.tenancy import province_codes

TENANTS = sorted(province_codes())


class _Plain(EventCatalogue):
    """The same events, none of their fields personal."""

    def personal_of(self, event_cls: type[Any]) -> dict[str, Personal]:
        return {}


async def _run(runtime: ServiceRuntime, clients: int, seconds: float) -> tuple[float, float]:
    """Commands/s and CPU milliseconds per command of this process (clients included)."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            tenant = TENANTS[(n + i * clients) % len(TENANTS)]
            ctx = CommandContext(tenant=tenant, actor="bench", correlation_id=f"b-{n}-{i}")
            command = RegisterWorker(full_name=f"Siti Aminah {n}-{i}", birth_date=date(1990, 3, 4))
            await runtime.bus.execute(command, ctx)
            done += 1
            i += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return done / wall, 1000 * cpu / max(done, 1)


def _per_op(what: Any, n: int = 20_000) -> float:
    """Microseconds of CPU per call."""
    start = time.process_time()
    for _ in range(n):
        what()
    return 1e6 * (time.process_time() - start) / n


def crypto_costs() -> list[tuple[str, float]]:
    master, key = new_data_key(), new_data_key()
    where = {"service": "hr", "tenant": "35", "subject": "s", "field": "full_name"}
    sealed = seal_value(key, "Siti Aminah", **where)
    wrapped = wrap_key(master, key, service="hr", tenant="35", subject="s")
    return [
        ("seal one value", _per_op(lambda: seal_value(key, "Siti Aminah", **where))),
        (
            "open one value",
            _per_op(lambda: open_value(key, sealed, service="hr", tenant="35", field="full_name")),
        ),
        (
            "new key + wrap (a new subject)",
            _per_op(
                lambda: wrap_key(master, new_data_key(), service="hr", tenant="35", subject="s")
            ),
        ),
        (
            "unwrap a key (cache miss)",
            _per_op(lambda: unwrap_key(master, wrapped, service="hr", tenant="35", subject="s")),
        ),
    ]


async def main(seconds: float) -> None:
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-personal-"))
    with DevStack(workdir, env_db, os.environ.get("MPKS_NATS_URL") or None) as stack:
        database = f"mpks_bench_personal_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        owner_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        try:
            settings = Settings(
                database_url=owner_url,
                nats_url=stack.nats_url,
                # Few connections: the machine's PostgreSQL is shared.
                eventstore_pool_size=4,
                eventstore_pool_overflow=0,
                readmodel_pool_size=2,
            )
            runtime = build_runtime("hr", settings, run_background=False)
            await runtime.start()
            units = runtime.bus.units_of_work
            assert isinstance(units, EventStoreUnitsOfWork)
            personal = units.mapper
            plain = EnvelopeMapper(_Plain(runtime.definition.aggregates))
            print(
                f"RegisterWorker through the bus, {seconds:.0f}s per run, {os.cpu_count()} cores "
                "(client and service in one process; CPU is this process's)"
            )
            for clients in (1, 16):
                results = {}
                for variant, mapper in (("plain", plain), ("personal", personal)):
                    units.mapper = mapper
                    await _run(runtime, clients, min(seconds, 1.0))  # warm-up
                    results[variant] = await _run(runtime, clients, seconds)
                (plain_rate, plain_cpu), (rate, cpu) = results["plain"], results["personal"]
                print(
                    f"{clients:>2} clients  plain {plain_rate:7,.0f}/s {plain_cpu:5.2f} ms CPU  "
                    f"personal {rate:7,.0f}/s {cpu:5.2f} ms CPU  "
                    f"ratio {rate / plain_rate:4.2f}  "
                    f"latency +{1000 * clients * (1 / rate - 1 / plain_rate):.2f} ms/command  "
                    f"CPU +{cpu - plain_cpu:.2f} ms/command"
                )
            units.mapper = personal
            await runtime.stop()
            for name, micros in crypto_costs():
                print(f"{name:<32} {micros:6.1f} µs CPU")
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main(args.seconds))
