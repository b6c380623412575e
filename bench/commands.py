"""Commands/s and latency over HTTP, next to the machine's raw limit measured in the same run.

    make bench                # embedded stack unless MPKS_DATABASE_URL / MPKS_NATS_URL are set
    make bench ARGS="--seconds 10"

Commands: POST /v1/tenants/{t}/institutions on the registry (token check, validation,
event-sourced command appended in one call with the table lock and its idempotency record,
JSON reply), spread over all 38 provinces, or all
into one hot tenant. Raw INSERT: POST /raw doing one plain asyncpg INSERT. Each on uvicorn in
its own process, driven by the same client at 1, 16 and 64 concurrent clients. Every run
sends its own Idempotency-Keys (a reused key would be a replay, not a command) and counts the
answers that say they were replayed anyway.

Lags: a 16-client command run with the cases service up (it follows the registry's stream
over NATS), sampling commands and polling both read models for their rows (bench.lag).
Results are printed, saved as JSON and drawn as a PNG under .mpks/bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse, urlunparse
from uuid import UUID

import asyncpg
import httpx
import msgspec
import nats

from bench.client import Connection, Reply
from bench.cpu import PostgresCpu, busy_fraction, machine_jiffies, tree_cpu_seconds
from bench.lag import METHOD as LAG_METHOD
from bench.lag import LagProbe
from bench.report import Lags, Run, ratios, report
from shared.auth import Role, mint_dev_token
from shared.devstack.stack import DevStack
from shared.settings import Settings
from shared.tenancy import province_codes

CLIENTS = (1, 16, 64)
LAG_CLIENTS = 16
HOT_TENANT = "35"
# At most one sampled command per this many seconds: ~250 samples in a 5 s run.
SAMPLE_EVERY_SECONDS = 0.02
RESULTS = Path(__file__).resolve().parent.parent / ".mpks" / "bench"


class Request(NamedTuple):
    method: str
    path: str
    body: object
    headers: dict[str, str]
    tenant: str | None


RequestMaker = Callable[[int, int], Request]
Observer = Callable[[Request, Reply, float], None]


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


_SPLIT = " + a worker process (--split)"


class Meter:
    """CPU of the server under test and of PostgreSQL over one run."""

    def __init__(self, servers: list[int], postgres: PostgresCpu | None) -> None:
        # The server's processes: one, or the API and the worker process (`--split`).
        self.servers = servers
        self.postgres = postgres

    def _server_seconds(self) -> float | None:
        spent = [tree_cpu_seconds(pid) for pid in self.servers]
        return None if not spent or None in spent else sum(s for s in spent if s is not None)

    async def measure(
        self, work: Awaitable[None]
    ) -> tuple[float | None, float | None, dict[str, float] | None]:
        server_before = self._server_seconds()
        pg_before = await self.postgres.snapshot() if self.postgres else None
        await work
        # Work the run queued (projections, relay) still counts: let it finish first.
        await asyncio.sleep(1.0)
        server_after = self._server_seconds()
        pg_after = await self.postgres.snapshot() if self.postgres else None
        server = (
            server_after - server_before
            if server_before is not None and server_after is not None
            else None
        )
        if self.postgres is None or pg_before is None or pg_after is None:
            return server, None, None
        by_connection = self.postgres.spent_by_label(pg_before, pg_after)
        return server, sum(by_connection.values()), by_connection


async def _drive(
    scenario: str,
    base: str,
    clients: int,
    seconds: float,
    make_request: RequestMaker,
    *,
    tenants: int = 0,
    meter: Meter | None = None,
    observe: Observer | None = None,
) -> Run:
    """`clients` connections sending requests for `seconds`."""
    parsed = urlparse(base)
    latencies: list[float] = []
    errors = replayed = 0
    elapsed = 0.0

    async def worker(worker_id: int, stop_at: float) -> None:
        nonlocal errors, replayed
        conn = await Connection.open(parsed.hostname or "127.0.0.1", parsed.port or 80)
        try:
            i = 0
            while time.perf_counter() < stop_at:
                request = make_request(worker_id, i)
                started = time.perf_counter()
                reply = await conn.request(
                    request.method, request.path, request.body, request.headers
                )
                answered = time.perf_counter()
                if reply.status >= 400:
                    errors += 1
                else:
                    latencies.append(answered - started)
                    replayed += reply.replayed
                    if observe is not None:
                        observe(request, reply, answered)
                i += 1
        finally:
            await conn.close()

    busy: float | None = None
    client_cpu = 0.0

    async def run() -> None:
        nonlocal elapsed, busy, client_cpu
        machine, cpu, began = machine_jiffies(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(w, began + seconds) for w in range(clients)))
        elapsed = time.perf_counter() - began
        busy, client_cpu = busy_fraction(machine, machine_jiffies()), time.process_time() - cpu

    server_cpu, pg_cpu, pg_by = await (meter or Meter([], None)).measure(run())
    return Run(
        scenario,
        clients,
        tenants,
        elapsed,
        latencies,
        errors,
        replayed,
        server_cpu,
        pg_cpu,
        machine_busy=busy,
        client_cpu_seconds=client_cpu,
        postgres_cpu_by_connection=pg_by,
    )


def _serve(module_args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *module_args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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


async def _caught_up(conn: asyncpg.Connection, within: float) -> bool:
    """Cases' directory holds every institution the registry's projection does."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        behind = await conn.fetchval(
            """SELECT (SELECT count(*) FROM registry.institutions)
                    - (SELECT count(*) FROM cases.institution_directory)"""
        )
        if behind == 0:
            return True
        await asyncio.sleep(0.2)
    return False


async def _drained(conn: asyncpg.Connection, within: float) -> float:
    """Seconds until every registry projection is at every tenant log's head."""
    began = time.perf_counter()
    while time.perf_counter() - began < within:
        behind = await conn.fetchval(
            """SELECT count(*) FROM registry.log_heads() AS h
               CROSS JOIN (SELECT DISTINCT projection FROM registry.projection_positions) AS p
               LEFT JOIN registry.projection_positions AS at
                 ON at.projection = p.projection AND at.tenant_id = h.tenant
               WHERE h.head > coalesce(at.position, 0)"""
        )
        if behind == 0:
            break
        await asyncio.sleep(0.1)
    return time.perf_counter() - began


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _postgres_shares(run: Run) -> str:
    """PostgreSQL's CPU by whom it worked for: the registry's command path, its other
    connections (projections, relay, reads), the rest (WAL writer, …, the raw endpoint)."""
    shares = run.postgres_cpu_ms_by_connection()
    if not shares:
        return ""
    named = {"mpks-registry-commands": "commands", "mpks-registry": "background"}
    parts: dict[str, float] = {}
    for label, ms in shares.items():
        part = named.get(label, "rest")
        parts[part] = parts.get(part, 0.0) + ms
    order = [k for k in ("commands", "background", "rest") if k in parts]
    return " (" + ", ".join(f"{k} {parts[k]:.2f}" for k in order) + ")"


def _line(run: Run) -> str:
    label = {
        "commands": "command (registry)",
        "raw-insert": "raw INSERT",
        "hot-tenant": f"command, tenant {HOT_TENANT}",
        "commands+lag": "command +cases, probe",
    }[run.scenario]
    return (
        f"{label:<22} clients={run.clients:<3} {run.rate:8.0f} req/s   "
        f"p50 {run.p50_ms:6.2f} ms   p99 {run.p99_ms:6.2f} ms   n={run.count} "
        f"errors={run.errors} replayed={run.replayed}   "
        f"cpu/req server {_ms(run.per_request_ms(run.server_cpu_seconds))}, "
        f"PostgreSQL {_ms(run.per_request_ms(run.postgres_cpu_seconds))}{_postgres_shares(run)}, "
        f"client {_ms(run.per_request_ms(run.client_cpu_seconds))}; machine "
        + ("n/a" if run.machine_busy is None else f"{run.machine_busy:.0%} busy")
    )


async def main(seconds: float, workers: int, *, split: bool = False) -> None:
    started_at = datetime.now(UTC)
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    env_nats = os.environ.get("MPKS_NATS_URL") or None
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-"))
    with DevStack(workdir, env_db, env_nats, pg_port=_free_port(), nats_port=_free_port()) as stack:
        database = f"mpks_bench_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        # Before anything else runs: what one round trip costs on this machine.
        round_trip = await _round_trip(admin)
        await admin.close()
        db_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        registry_port, cases_port, raw_port = _free_port(), _free_port(), _free_port()
        settings = Settings(database_url=db_url, nats_url=stack.nats_url)
        prefix = f"mpksbench{secrets.token_hex(2)}"
        env = {
            **os.environ,
            "MPKS_DATABASE_URL": db_url,
            "MPKS_NATS_URL": stack.nats_url,
            "MPKS_NATS_PREFIX": prefix,
            "MPKS_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
            "MPKS_CASES_URL": f"http://127.0.0.1:{cases_port}",
            "MPKS_LOG_LEVEL": "WARNING",
            "MPKS_WORKERS": str(workers),
        }
        registry_proc = _serve(
            ["mpks.main", "serve", "registry", *(["--role", "api"] if split else [])], env
        )
        # `--split`: relay and projections in a process of their own (`--role worker`), as
        # a deployment runs them, so they do not compete with requests for one GIL.
        worker_port = _free_port()
        worker_procs = (
            [
                _serve(
                    [
                        "mpks.main",
                        "serve",
                        "registry",
                        "--role",
                        "worker",
                        "--port",
                        str(worker_port),
                    ],
                    {**env, "MPKS_WORKERS": "1"},
                )
            ]
            if split
            else []
        )
        raw_proc = _serve(
            [
                "uvicorn",
                "--factory",
                "bench.raw_insert_app:create_app",
                "--port",
                str(raw_port),
                "--log-level",
                "warning",
            ],
            env,
        )
        # Only for the lag run: it follows the registry's stream (its own process, as in
        # production), and stops before the throughput runs so they measure the registry alone.
        cases_proc = _serve(["mpks.main", "serve", "cases"], {**env, "MPKS_WORKERS": "1"})
        procs = [registry_proc, *worker_procs, raw_proc, cases_proc]
        probe_conn: asyncpg.Connection | None = None
        try:
            registry = f"http://127.0.0.1:{registry_port}"
            raw = f"http://127.0.0.1:{raw_port}"
            await _wait_up(f"{registry}/health/live", registry_proc)
            await _wait_up(f"{raw}/raw", raw_proc)
            for worker_proc in worker_procs:
                await _wait_up(f"http://127.0.0.1:{worker_port}/health/live", worker_proc)
            await _wait_up(f"http://127.0.0.1:{cases_port}/health/live", cases_proc)
            candidate = PostgresCpu(stack.database_url, database)
            postgres = candidate if await candidate.available() else None
            registry_meter = Meter([registry_proc.pid, *(p.pid for p in worker_procs)], postgres)
            raw_meter = Meter([raw_proc.pid], postgres)

            all_tenants = sorted(province_codes())
            tokens = {
                t: mint_dev_token(settings, sub="bench", tenant=t, roles=[Role.WILAYAH_ADMIN])
                for t in all_tenants
            }
            run_id = secrets.token_hex(3)
            runs = 0

            def commands(tenants: list[str]) -> RequestMaker:
                """Registrations into `tenants`, with keys no other run uses."""
                nonlocal runs
                runs += 1
                run = runs

                def make(worker: int, i: int) -> Request:
                    tenant = tenants[(worker * 7 + i) % len(tenants)]
                    return Request(
                        "POST",
                        f"/v1/tenants/{tenant}/institutions",
                        {"name": f"LKSA Bench {worker}-{i}", "kind": "lksa", "pdm": f"{tenant}71"},
                        {
                            "Authorization": f"Bearer {tokens[tenant]}",
                            "Idempotency-Key": f"bench-{run_id}-{run}-{worker}-{i}",
                        },
                        tenant,
                    )

                return make

            def raw_insert(worker: int, i: int) -> Request:
                return Request("POST", "/raw", {"name": f"row {worker}-{i}"}, {}, None)

            # Warm up all (connection pools, prepared statements, every tenant's app).
            await _drive("commands", registry, 4, 2.0, commands(all_tenants))
            await _drive("raw-insert", raw, 4, 1.0, raw_insert)

            # The lag run, cases consuming the registry's stream from the warm-up on.
            probe_conn = await asyncpg.connect(db_url)
            if postgres is not None:
                postgres.ignored.add(int(await probe_conn.fetchval("SELECT pg_backend_pid()")))
            if not await _caught_up(probe_conn, within=60.0):
                print("warning: cases had not caught up with the warm-up after 60 s")
            probe = LagProbe(probe_conn)
            last_sample = 0.0

            def sample(request: Request, reply: Reply, answered_at: float) -> None:
                nonlocal last_sample
                if answered_at - last_sample < SAMPLE_EVERY_SECONDS or request.tenant is None:
                    return
                last_sample = answered_at
                row_id = UUID(msgspec.json.decode(reply.body)["id"])
                probe.sample(request.tenant, row_id, answered_at)

            stop_polling = asyncio.Event()
            poller = asyncio.create_task(probe.poll(stop_polling))
            lag_run = await _drive(
                "commands+lag",
                registry,
                LAG_CLIENTS,
                seconds,
                commands(all_tenants),
                tenants=len(all_tenants),
                meter=registry_meter,
                observe=sample,
            )
            stop_polling.set()
            await poller
            missing = await probe.drain(within=15.0)
            lags = [Lags(kind, probe.lags[kind], missing[kind]) for kind in probe.lags]
            cases_proc.terminate()
            cases_proc.wait(timeout=20)

            results: list[Run] = []
            peak_connections = 0
            drained: dict[int, float] = {}
            for clients in CLIENTS:
                sampler_stop = asyncio.Event()

                async def sample_connections(stop: asyncio.Event) -> None:
                    nonlocal peak_connections
                    while not stop.is_set():
                        peak_connections = max(
                            peak_connections, await _connections(stack.database_url, database)
                        )
                        await asyncio.sleep(0.25)

                sampler = asyncio.create_task(sample_connections(sampler_stop))
                results.append(
                    await _drive(
                        "commands",
                        registry,
                        clients,
                        seconds,
                        commands(all_tenants),
                        tenants=len(all_tenants),
                        meter=registry_meter,
                    )
                )
                sampler_stop.set()
                await sampler
                # The raw endpoint gets the machine to itself: not while the registry is
                # still applying the run's events to its read models.
                drained[clients] = await _drained(probe_conn, within=120.0)
                results.append(
                    await _drive("raw-insert", raw, clients, seconds, raw_insert, meter=raw_meter)
                )
            results.append(
                await _drive(
                    "hot-tenant",
                    registry,
                    LAG_CLIENTS,
                    seconds,
                    commands([HOT_TENANT]),
                    tenants=1,
                    meter=registry_meter,
                )
            )
            results.append(lag_run)

            environment = {
                "cores": os.cpu_count(),
                "seconds_per_run": seconds,
                "registry_workers": workers,
                "registry_split": split,
                "postgres": "embedded" if "postgres" in stack.embedded else "configured",
                "nats": "embedded" if "nats" in stack.embedded else "configured",
                "postgres_cpu_measured": postgres is not None,
                "python": sys.version.split()[0],
                "commit": _git_commit(),
                "round_trip_us": round_trip,
            }
            saved = report(
                started_at=started_at.isoformat(timespec="seconds"),
                environment=environment,
                runs=results,
                lags=lags,
                lag_method=LAG_METHOD,
                peak_connections=peak_connections,
            )
            _print(results, lags, environment, settings, peak_connections)
            print(
                "registry's read models caught up with the log after each command run, before "
                "the raw run: " + ", ".join(f"{c} clients {s:.1f} s" for c, s in drained.items())
            )
            _save(saved, started_at)
        finally:
            if probe_conn is not None:
                await probe_conn.close()
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)
            admin = await asyncpg.connect(stack.database_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
            await _delete_streams(stack.nats_url, prefix)
    shutil.rmtree(workdir, ignore_errors=True)


async def _round_trip(conn: asyncpg.Connection, count: int = 2000) -> dict[str, float]:
    """One asyncpg round trip (`SELECT 1`) on an idle machine: the caller's CPU and the
    wall time, in µs. Every statement the command path, the projections or the relay send
    costs the service at least that much CPU (a system call to send, the event loop's wake-up
    and one to receive), whatever PostgreSQL does with it."""
    for _ in range(200):
        await conn.fetchval("SELECT 1")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await conn.fetchval("SELECT 1")
    return {
        "cpu": round((time.process_time() - cpu) / count * 1e6, 1),
        "wall": round((time.perf_counter() - wall) / count * 1e6, 1),
    }


def _print(
    runs: list[Run],
    lags: list[Lags],
    environment: dict[str, Any],
    settings: Settings,
    peak_connections: int,
) -> None:
    print(
        f"\nMPKS benchmark — {environment['seconds_per_run']:g}s per run, "
        f"{environment['cores']} cores, registry with {environment['registry_workers']} worker "
        f"process(es){_SPLIT if environment.get('registry_split') else ''}, "
        f"commit {environment['commit']}"
    )
    print(f"PostgreSQL: {environment['postgres']}; NATS: {environment['nats']}")
    trip = environment["round_trip_us"]
    print(
        f"one asyncpg round trip (SELECT 1, idle machine): {trip['cpu']:.1f} µs of the caller's "
        f"CPU, {trip['wall']:.1f} µs wall"
    )
    by_clients = ratios(runs)
    for clients in CLIENTS:
        for run in runs:
            if run.clients == clients and run.scenario in ("commands", "raw-insert"):
                print(_line(run))
        ratio = by_clients.get(str(clients))
        shown = f"{ratio:8.2f}" if ratio is not None else "     n/a"
        print(f"{'ratio command/raw':<22} clients={clients:<3} {shown}")
    hot = next(r for r in runs if r.scenario == "hot-tenant")
    spread = next(r for r in runs if r.scenario == "commands" and r.clients == hot.clients)
    print(_line(hot))
    print(
        f"{'hot tenant / 38':<22} clients={hot.clients:<3} {hot.rate / spread.rate:8.2f}"
        if spread.rate
        else "hot tenant / 38: n/a"
    )
    lag_run = next(r for r in runs if r.scenario == "commands+lag")
    print(_line(lag_run))
    for lag in lags:
        figures = lag.as_json()
        print(
            f"{lag.name + ' lag':<22} clients={lag_run.clients:<3} "
            f"p50 {_ms(figures['p50_ms'])}   p99 {_ms(figures['p99_ms'])}   "
            f"max {_ms(figures['max_ms'])}   samples={figures['samples']} "
            f"missing={figures['missing']}"
        )
    print(f"  lag measured {LAG_METHOD}")
    print(
        "  cpu/req: the server's process tree (background work included) and PostgreSQL's "
        "processes for the bench database plus its shared ones (WAL writer, checkpointer…, "
        "also busy with anything else on the server); in the lag run the server is the "
        "registry alone while PostgreSQL's figure includes cases' connections; client: this "
        "process (the load); machine busy: all cores, whoever used them, while the clients sent"
        + ("" if environment["postgres_cpu_measured"] else "; PostgreSQL n/a: not on this machine")
    )
    print(
        f"PostgreSQL connections held by the registry during the command runs (all 38 "
        f"tenants active): peak {peak_connections} (event-store pool max "
        f"{settings.eventstore_pool_size + settings.eventstore_pool_overflow}, "
        f"read-model pool max {settings.readmodel_pool_size}, listener and leader locks "
        f"— per worker process)"
    )


def _save(saved: dict[str, Any], started_at: datetime) -> None:
    from bench.chart import draw  # matplotlib loads in a second or two: only when saving

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / started_at.strftime("%Y%m%dT%H%M%SZ")
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(saved, indent=2) + "\n")
    png_path = stem.with_suffix(".png")
    draw(saved, png_path)
    print(f"Saved {json_path} and {png_path}")


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
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the registry as an api process and a worker process (relay, projections)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.workers, split=args.split))
