"""`mpks audit verify`: recompute a tenant's hash chains and check their signed checkpoints,
with a progress bar; exit status 1 when a log is not intact."""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path

import asyncpg
import nats
from nats.js import JetStreamContext
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mpks.up import one_off_database
from shared.audit.checkpoints import audit_log
from shared.audit.signing import load_public_key, trusted_keys
from shared.audit.verify import LogReport, log_size
from shared.devstack.processes import port_accepts
from shared.devstack.stack import EMBEDDED_NATS_PORT
from shared.settings import Settings


def _nats_url(settings: Settings) -> str | None:
    if settings.nats_url is not None:
        return settings.nats_url
    if port_accepts(EMBEDDED_NATS_PORT):
        from shared.messaging.permissions import SERVICES_USER, service_nats_password

        password = service_nats_password(settings)
        return f"nats://{SERVICES_USER}:{password}@127.0.0.1:{EMBEDDED_NATS_PORT}"
    return None


async def _verify(
    settings: Settings, database_url: str, tenant: str, services: list[str], keys_from: list[Path]
) -> list[LogReport]:
    keys = trusted_keys(settings, [load_public_key(path.read_bytes()) for path in keys_from])
    console = Console(stderr=True)
    js: JetStreamContext | None = None
    nc = None
    url = _nats_url(settings)
    if url is not None:
        try:
            nc = await nats.connect(url, allow_reconnect=False, connect_timeout=3)
            js = nc.jetstream()
        except Exception as exc:
            console.print(f"NATS unreachable ({exc}): checking the database's checkpoints only")
    conn = await asyncpg.connect(database_url)
    reports: list[LogReport] = []
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            for service in services:
                # One snapshot per log: appends during the run are not half-seen.
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    task = progress.add_task(
                        f"{service} {tenant}", total=await log_size(conn, service, tenant)
                    )
                    reports.append(
                        await audit_log(
                            conn,
                            service,
                            tenant,
                            keys=keys,
                            js=js,
                            prefix=settings.nats_prefix,
                            progress=functools.partial(progress.advance, task),
                        )
                    )
    finally:
        await conn.close()
        if nc is not None:
            await nc.close()
    return reports


def run_verify(
    settings: Settings, tenant: str, services: list[str], public_keys: list[Path]
) -> int:
    with one_off_database(settings) as database_url:
        reports = asyncio.run(_verify(settings, database_url, tenant, services, public_keys))
    for report in reports:
        stream = "" if "stream" in report.sources else " (database checkpoints only)"
        out = sys.stdout if report.intact else sys.stderr
        print(f"{report.service} tenant {report.tenant}: {report.summary}{stream}", file=out)
    return 0 if all(r.intact for r in reports) else 1
