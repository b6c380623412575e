"""The tenant export (`mpks audit export`, `GET /v1/tenants/{t}/export`) against a raw `COPY`
of the same rows, measured in the same run.

Fills tenant 35's logs of the three services with realistic stored events (1,000,000 by
default, written straight into the tables with COPY: the command path is not what this
measures), then times, each reading every event of the tenant:

- **raw COPY**: `COPY (SELECT <the export's columns> … ORDER BY position) TO STDOUT` per
  service into a file, on one asyncpg connection: the rows leaving PostgreSQL with no work
  on them, the limit an export cannot beat;
- **export**: the CLI's path (`shared.audit.export.read_export`, the owner's connection)
  writing the NDJSON document into a file;
- **CLI**: `mpks audit export --tenant 35 --out FILE` as a process (start-up included);
- **HTTP**: `GET /v1/tenants/35/export` streamed from the registry service (its own log from
  PostgreSQL, the others' through their services), written to a file;
- **HTTP parts**: each service's own part (`?service=<name>` at its URL, one hop) in turn,
  into one file (three documents, each whole).

Each round times every path after a raw COPY (`--rounds`, 3 by default); prints rows/s for
each and its ratio to the raw COPY of its round, the median of the rounds. `make bench-export`
(`ARGS="--events 200000"` for a shorter run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import msgspec

from services.bootstrap import SERVICES
from shared.audit.export import COLUMNS, Cursor, read_export
from shared.auth import Role, mint_dev_token
from shared.devstack.stack import DevStack
from shared.eventstore.envelope import EventMeta, StoredState
from shared.eventstore.stores import events_table, tenant_schema
from shared.runtime import migrate_service
from shared.settings import Settings

TENANT = "35"
# How the tenant's events spread over the services (registry is the busiest).
SHARES = {"registry": 0.5, "cases": 0.3, "hr": 0.2}
TOPICS = {
    "registry": ["Institution.Registered", "Institution.Renamed", "Institution.Suspended"],
    "cases": ["Complaint.Received", "Complaint.Triaged", "Case.Opened"],
    "hr": ["SocialWorker.Registered", "Certification.Granted", "SocialWorker.Deployed"],
}
# Events per aggregate (its versions 1..N).
PER_RECORD = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rows(service: str, count: int) -> list[tuple[uuid.UUID, int, str, bytes]]:
    encoder = msgspec.json.Encoder()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    topics = TOPICS[service]
    rows = []
    record = uuid.uuid4()
    for i in range(count):
        version = i % PER_RECORD + 1
        if version == 1:
            record = uuid.uuid4()
        meta = EventMeta(
            tenant=TENANT,
            actor=f"user-{i % 97}@pwm35.muhammadiyah.or.id",
            correlation_id=uuid.uuid4().hex,
            causation_id=None if i % 3 else uuid.uuid4().hex,
            reason="Keputusan rapat pleno PWM No. 12/KEP/2025" if i % 4 == 0 else None,
            command_id=uuid.uuid4(),
        )
        data: dict[str, Any] = {
            "timestamp": start + timedelta(seconds=i),
            "name": f"LKSA Muhammadiyah Surabaya {i}",
            "pdm": "3578",
            "note": "Pemeriksaan berkala oleh tim wilayah; dokumen lengkap.",
        }
        if version == 1:
            data["originator_topic"] = topics[0].partition(".")[0]
        state = encoder.encode(StoredState(v=1, meta=meta, data=data))
        rows.append((record, version, topics[i % len(topics)], state))
    return rows


async def fill(owner: asyncpg.Connection[Any], total: int) -> dict[str, int]:
    counts = {name: int(total * share) for name, share in SHARES.items()}
    counts["registry"] += total - sum(counts.values())
    for service, count in counts.items():
        table = events_table(service)
        schema = tenant_schema(service, TENANT)
        for done in range(0, count, 100_000):
            rows = _rows(service, min(100_000, count - done))
            await owner.copy_records_to_table(
                table,
                schema_name=schema,
                records=rows,
                columns=["originator_id", "originator_version", "topic", "state"],
            )
        await owner.execute(f"ANALYZE {schema}.{table}")
    return counts


async def raw_copy(owner: asyncpg.Connection[Any], out: Path) -> None:
    with out.open("wb") as f:

        async def write(chunk: bytes) -> None:
            f.write(chunk)

        for service in SERVICES:
            table = f"{tenant_schema(service, TENANT)}.{events_table(service)}"
            await owner.copy_from_query(
                f"SELECT {COLUMNS} FROM {table} ORDER BY notification_id", output=write
            )


async def export(owner: asyncpg.Connection[Any], out: Path) -> None:
    cursor = Cursor.parse(None, SERVICES)
    with out.open("wb") as f:
        async for chunk in read_export(dict.fromkeys(SERVICES, owner), TENANT, cursor, None):
            f.write(chunk)


async def timed(label: str, work: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    print(f"  {label:<12} {seconds:7.2f} s", flush=True)
    return seconds


def _serve(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mpks.main", "serve", name, "--role", "api"], env=env
    )


async def _ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                if (await http.get(f"{url}/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not get ready")


async def _download(
    http: httpx.AsyncClient, url: str, token: str, into: IO[bytes], **params: str
) -> None:
    export_url = f"{url}/v1/tenants/{TENANT}/export"
    headers = {"Authorization": f"Bearer {token}"}
    async with http.stream("GET", export_url, headers=headers, params=params) as r:
        r.raise_for_status()
        async for chunk in r.aiter_raw():
            into.write(chunk)


async def http_export(url: str, token: str, out: Path) -> None:
    async with httpx.AsyncClient(timeout=600) as http:
        with out.open("wb") as f:
            await _download(http, url, token, f)


async def http_parts(urls: dict[str, str], token: str, out: Path) -> None:
    """Each service's own part from that service (one hop each), one after the other."""
    async with httpx.AsyncClient(timeout=600) as http:
        with out.open("wb") as f:
            for name, url in urls.items():
                await _download(http, url, token, f, service=name)


async def main(total: int, with_http: bool, rounds: int) -> None:
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    env_nats = os.environ.get("MPKS_NATS_URL") or None
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-export-"))
    with DevStack(workdir, env_db, env_nats, pg_port=_free_port(), nats_port=_free_port()) as stack:
        database = f"mpks_bench_export_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        db_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        settings = Settings(database_url=db_url, nats_url=stack.nats_url)
        owner = await asyncpg.connect(db_url)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for declared in SERVICES.values():
                await migrate_service(declared.define(), db_url, settings)
            env = {**os.environ, "MPKS_DATABASE_URL": db_url, "MPKS_LOG_LEVEL": "WARNING"}
            urls = {name: f"http://127.0.0.1:{_free_port()}" for name in SERVICES}
            if with_http:
                # Started before the fill: a service migrates its schemas as it starts.
                serving = env | {"MPKS_NATS_URL": stack.nats_url}
                serving |= {f"MPKS_{name.upper()}_URL": url for name, url in urls.items()}
                procs = [_serve(name, serving) for name in SERVICES]
                for url in urls.values():
                    await _ready(url)
                token = mint_dev_token(settings, sub="bench", tenant=TENANT, roles=[Role.AUDITOR])
            started = time.perf_counter()
            counts = await fill(owner, total)
            print(
                f"filled tenant {TENANT}: {sum(counts.values()):,} events "
                f"({', '.join(f'{k} {v:,}' for k, v in counts.items())}) "
                f"in {time.perf_counter() - started:.1f} s"
            )
            raw_file, export_file = workdir / "raw.copy", workdir / "export.ndjson"
            cli_file, http_file = workdir / "cli.ndjson", workdir / "http.ndjson"
            parts_file = workdir / "parts.ndjson"

            async def cli() -> None:
                # With its progress bar, as a user runs it.
                args = ["audit", "export", "--tenant", TENANT, "--out", str(cli_file)]
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "mpks.main", *args, env=env
                )
                if await proc.wait() != 0:
                    raise RuntimeError("mpks audit export failed")

            paths: dict[str, tuple[Path, Callable[[], Awaitable[None]]]] = {
                "raw COPY": (raw_file, lambda: raw_copy(owner, raw_file)),
                "export": (export_file, lambda: export(owner, export_file)),
                "CLI": (cli_file, cli),
            }
            if with_http:
                paths["HTTP"] = (http_file, lambda: http_export(urls["registry"], token, http_file))
                paths["HTTP parts"] = (parts_file, lambda: http_parts(urls, token, parts_file))
            # Once untimed, so every run reads the same warm cache.
            await raw_copy(owner, raw_file)
            # Each round times every path right after a raw COPY, and each path's ratio is
            # taken to that round's COPY: on a machine others share, the load changes from
            # one second to the next, and the median of the rounds is what is reported.
            ratios: dict[str, list[float]] = {label: [] for label in paths}
            seconds: dict[str, list[float]] = {label: [] for label in paths}
            for round_ in range(1, rounds + 1):
                print(f"round {round_} (each reads every event of the tenant):")
                raw = 0.0
                for label, (_, work) in paths.items():
                    took = await timed(label, work)
                    raw = raw or took
                    seconds[label].append(took)
                    ratios[label].append(raw / took)
            print(f"\n{'path':<11} {'rows/s':>12} {'MB':>8} {'ratio to raw COPY':>18}  (rounds)")
            for label, (file, _) in paths.items():
                size = file.stat().st_size / 1e6
                rate = total / statistics.median(seconds[label])
                each = " ".join(f"{r:.2f}" for r in ratios[label])
                print(
                    f"{label:<11} {rate:>12,.0f} {size:>8.0f} "
                    f"{statistics.median(ratios[label]):>18.2f}  ({each})"
                )
            print("(ratio = raw COPY seconds / path seconds, median of the rounds; target ≥ 0.50)")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
            await owner.close()
            admin = await asyncpg.connect(stack.database_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the tenant")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP path")
    parser.add_argument("--rounds", type=int, default=3, help="times each path is measured")
    args = parser.parse_args()
    asyncio.run(main(args.events, not args.no_http, args.rounds))


if __name__ == "__main__":
    run()
