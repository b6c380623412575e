"""Commands/s and latency over HTTP, next to the machine's raw limit measured in the same run.

    make bench                # embedded stack unless MPKS_DATABASE_URL / MPKS_NATS_URL are set
    make bench ARGS="--seconds 10"

Scenario A: POST /v1/tenants/{t}/institutions on the registry (token check, validation,
event-sourced command appended in one call with the table lock and its idempotency record,
JSON reply), spread over all 38 provinces. Scenario B: POST /raw doing one plain asyncpg INSERT.
Both on uvicorn in their own process, driven by the same client at 1 and 16 concurrent
clients. Also samples PostgreSQL connections while all 38 tenants are active.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import nats

from bench.client import Connection
from shared.auth import Role, mint_dev_token
from shared.devstack.stack import DevStack
from shared.settings import Settings
from shared.tenancy import province_codes

RequestMaker = Callable[[int, int], tuple[str, str, object, dict[str, str]]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"server for {url} exited with {proc.returncode}")
            try:
                await client.get(url)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process and its descendants, from /proc (Linux)."""
    proc = Path("/proc")
    if not proc.exists():
        return None
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces: the fields start after its closing ")".
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree = {pid}
    grew = True
    while grew:
        grown = {p for p, parent in parents.items() if parent in tree} | tree
        grew, tree = grown != tree, grown
    return sum(times.get(p, 0.0) for p in tree)


class Result:
    def __init__(
        self,
        name: str,
        clients: int,
        latencies: list[float],
        seconds: float,
        errors: int,
        cpu_seconds: float | None = None,
    ):
        self.name = name
        self.clients = clients
        self.count = len(latencies)
        self.rate = self.count / seconds
        ordered = sorted(latencies)
        self.p50 = statistics.median(ordered) * 1000 if ordered else float("nan")
        self.p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000 if ordered else float("nan")
        self.errors = errors
        # Server CPU per request, background work (relay, projections) included.
        self.cpu_ms = (
            cpu_seconds * 1000 / self.count if cpu_seconds is not None and self.count else None
        )

    def line(self) -> str:
        cpu = f"   cpu {self.cpu_ms:5.2f} ms/req" if self.cpu_ms is not None else ""
        return (
            f"{self.name:<22} clients={self.clients:<3} {self.rate:8.0f} req/s   "
            f"p50 {self.p50:6.2f} ms   p99 {self.p99:6.2f} ms   n={self.count} errors={self.errors}"
            f"{cpu}"
        )


async def _drive(
    name: str,
    base: str,
    clients: int,
    seconds: float,
    make_request: RequestMaker,
    server: int | None = None,
) -> Result:
    """`clients` connections sending requests for `seconds`; `server`: the pid whose CPU
    time to measure over the run."""
    parsed = urlparse(base)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(worker_id: int) -> None:
        nonlocal errors
        conn = await Connection.open(parsed.hostname or "127.0.0.1", parsed.port or 80)
        try:
            i = 0
            while time.perf_counter() < stop_at:
                method, path, body, headers = make_request(worker_id, i)
                started = time.perf_counter()
                status = await conn.request(method, path, body, headers)
                elapsed = time.perf_counter() - started
                if status >= 400:
                    errors += 1
                else:
                    latencies.append(elapsed)
                i += 1
        finally:
            await conn.close()

    cpu_before = _cpu_seconds(server) if server is not None else None
    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = time.perf_counter() - began
    # Work the run queued (projections, relay) still counts: let it finish first.
    await asyncio.sleep(1.0)
    cpu_after = _cpu_seconds(server) if server is not None else None
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Result(name, clients, latencies, elapsed, errors, cpu)


def _launch(env: dict[str, str], raw_port: int) -> list[subprocess.Popen[bytes]]:
    """The registry and the raw-INSERT app, each in its own process like in production."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "mpks.main", "serve", "registry"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bench.raw_insert_app:create_app",
                "--port",
                str(raw_port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]


async def _connections(admin_url: str, database: str) -> int:
    conn = await asyncpg.connect(admin_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
            )
        )
    finally:
        await conn.close()


async def main(seconds: float, workers: int) -> None:
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    env_nats = os.environ.get("MPKS_NATS_URL") or None
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-"))
    with DevStack(workdir, env_db, env_nats, pg_port=_free_port(), nats_port=_free_port()) as stack:
        database = f"mpks_bench_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        db_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        registry_port, raw_port = _free_port(), _free_port()
        settings = Settings(database_url=db_url, nats_url=stack.nats_url)
        prefix = f"mpksbench{secrets.token_hex(2)}"
        env = {
            **os.environ,
            "MPKS_DATABASE_URL": db_url,
            "MPKS_NATS_URL": stack.nats_url,
            "MPKS_NATS_PREFIX": prefix,
            "MPKS_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
            "MPKS_LOG_LEVEL": "WARNING",
            "MPKS_WORKERS": str(workers),
        }
        procs = _launch(env, raw_port)
        try:
            registry = f"http://127.0.0.1:{registry_port}"
            raw = f"http://127.0.0.1:{raw_port}"
            await _wait_up(f"{registry}/health/live", procs[0])
            await _wait_up(f"{raw}/raw", procs[1])
            tenants = sorted(province_codes())
            tokens = {
                t: mint_dev_token(settings, sub="bench", tenant=t, roles=[Role.WILAYAH_ADMIN])
                for t in tenants
            }
            run_id = secrets.token_hex(3)
            # Each run its own keys: a key reused from the warm-up would be a replay, not
            # a command.
            phase = 0

            def command(worker: int, i: int) -> tuple[str, str, object, dict[str, str]]:
                tenant = tenants[(worker * 7 + i) % len(tenants)]
                return (
                    "POST",
                    f"/v1/tenants/{tenant}/institutions",
                    {"name": f"LKSA Bench {worker}-{i}", "kind": "lksa", "pdm": f"{tenant}71"},
                    {
                        "Authorization": f"Bearer {tokens[tenant]}",
                        "Idempotency-Key": f"bench-{run_id}-{phase}-{worker}-{i}",
                    },
                )

            def raw_insert(worker: int, i: int) -> tuple[str, str, object, dict[str, str]]:
                return ("POST", "/raw", {"name": f"row {worker}-{i}"}, {})

            # Warm up both (connection pools, prepared statements, every tenant's app).
            await _drive("warm-up", registry, 4, 2.0, command)
            await _drive("warm-up", raw, 4, 1.0, raw_insert)

            results: list[tuple[Result, Result]] = []
            peak_connections = 0
            for clients in (1, 16):
                sampler_stop = asyncio.Event()

                async def sample(stop: asyncio.Event) -> None:
                    nonlocal peak_connections
                    while not stop.is_set():
                        peak_connections = max(
                            peak_connections, await _connections(stack.database_url, database)
                        )
                        await asyncio.sleep(0.25)

                sampler = asyncio.create_task(sample(sampler_stop))
                phase += 1
                a = await _drive(
                    "command (registry)", registry, clients, seconds, command, procs[0].pid
                )
                sampler_stop.set()
                await sampler
                b = await _drive("raw INSERT", raw, clients, seconds, raw_insert, procs[1].pid)
                results.append((a, b))

            print(
                f"\nMPKS benchmark — {seconds:.0f}s per scenario, {os.cpu_count()} cores, "
                f"registry with {workers} worker process(es)"
            )
            print(
                f"PostgreSQL: {'embedded' if 'postgres' in stack.embedded else 'configured'}; "
                f"NATS: {'embedded' if 'nats' in stack.embedded else 'configured'}"
            )
            for a, b in results:
                print(a.line())
                print(b.line())
                print(f"{'ratio command/raw':<22} clients={a.clients:<3} {a.rate / b.rate:8.2f}")
            print(
                f"PostgreSQL connections held by the registry during the command runs (all 38 "
                f"tenants active): peak {peak_connections} (event-store pool max "
                f"{settings.eventstore_pool_size + settings.eventstore_pool_overflow}, "
                f"read-model pool max {settings.readmodel_pool_size}, listener and leader locks "
                f"— per worker process)"
            )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)
            admin = await asyncpg.connect(stack.database_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
            await _delete_streams(stack.nats_url, prefix)
    shutil.rmtree(workdir, ignore_errors=True)


async def _delete_streams(nats_url: str, prefix: str) -> None:
    """Leave a configured NATS as it was found."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for stream in await js.streams_info():
            if stream.config.name and stream.config.name.startswith(prefix.upper()):
                await js.delete_stream(stream.config.name)
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1, help="registry worker processes")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.workers))
