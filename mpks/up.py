"""`mpks up`: embedded PostgreSQL and NATS (unless URLs are configured), migrations, the
declared services as child processes; Ctrl-C stops everything cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx

from services.bootstrap import SERVICES
from shared.audit.snapshots import Snapshots
from shared.db.pool import create_pool
from shared.db.roles import app_database_url
from shared.devstack.postgres import EmbeddedPostgres
from shared.devstack.processes import port_accepts
from shared.devstack.stack import EMBEDDED_PG_PORT, DevStack
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.logs import TenantLogs
from shared.messaging.consumer import Reaction
from shared.messaging.feed import FeedClient
from shared.messaging.rebuild import rebuild_reaction
from shared.personal.cipher import master_key
from shared.personal.keys import SubjectKeys
from shared.projections.dispatch import Dispatch
from shared.projections.runner import ProjectionRunner
from shared.resilience.faults import SourceUnavailable
from shared.resilience.stalls import Stall, request_retry
from shared.runtime import migrate_service
from shared.scheduling.report import request_deadline_retry
from shared.service import ServiceDefinition
from shared.settings import ProcessRole, Settings
from shared.tenancy import province_codes

DATABASE_NAME = "mpks"


async def ensure_database(server_url: str, name: str) -> str:
    """The embedded cluster's own database for the platform (not `postgres`)."""
    conn = await asyncpg.connect(server_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunparse(urlparse(server_url)._replace(path=f"/{name}"))


async def _migrate_all(settings: Settings, services: list[str]) -> None:
    assert settings.database_url is not None
    for name in services:
        await migrate_service(SERVICES[name].define(), settings.database_url, settings)


def _with_stack(settings: Settings) -> tuple[DevStack, Settings]:
    from shared.messaging import permissions

    # An embedded NATS gets one account per province, holding only its own events.
    stack = DevStack(
        settings.data_dir,
        settings.database_url,
        settings.nats_url,
        nats_config_text=permissions.render_accounts(settings),
        nats_credentials=(permissions.SERVICES_USER, permissions.service_nats_password(settings)),
    ).start()
    try:
        database_url = stack.database_url
        if "postgres" in stack.embedded:
            database_url = asyncio.run(ensure_database(database_url, DATABASE_NAME))
        settings = settings.replace(database_url=database_url, nats_url=stack.nats_url)
        if "nats" in stack.embedded:
            asyncio.run(permissions.provision(settings, SERVICES))
    except BaseException:
        stack.stop()
        raise
    return stack, settings


@contextmanager
def one_off_database(settings: Settings) -> Iterator[str]:
    """The database for one-off commands (migrate, rebuild, audit), which need no NATS. When
    `mpks up` is already running the embedded cluster, use it and leave it running."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    if port_accepts(EMBEDDED_PG_PORT):
        yield f"postgresql://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/{DATABASE_NAME}"
        return
    with EmbeddedPostgres(settings.data_dir / "postgres", EMBEDDED_PG_PORT) as server:
        yield asyncio.run(ensure_database(server.url, DATABASE_NAME))


def run_migrate(settings: Settings, services: list[str]) -> int:
    with one_off_database(settings) as database_url:
        asyncio.run(_migrate_all(settings.replace(database_url=database_url), services))
    print(f"migrated: {', '.join(services)}")
    return 0


def run_rebuild(settings: Settings, service: str, projection: str) -> int:
    definition = SERVICES[service].define()
    logs = TenantLogs(service, EventCatalogue(definition.aggregates))
    runner_projections = {p.name: p for p in definition.read_models(Snapshots(service, logs))}
    # Read models of other services' events (reactions with tables of their own; process
    # managers issue commands and are never replayed).
    reactions = {
        reaction.name: (source, reaction)
        for source, make in definition.reactions.items()
        for reaction in make()
        if reaction.tables
    }
    if projection in reactions:
        return _rebuild_reaction(settings, definition, *reactions[projection])
    if projection not in runner_projections:
        print(
            f"mpks rebuild: {service} has no projection {projection!r} "
            f"(it has: {', '.join(sorted([*runner_projections, *reactions]))})",
            file=sys.stderr,
        )
        return 2

    async def rebuild(database_url: str) -> tuple[int, list[Stall]]:
        await migrate_service(definition, database_url, settings)
        pool = await create_pool(app_database_url(settings, database_url), max_size=2)
        owner = await asyncpg.connect(database_url)
        try:
            runner = ProjectionRunner(
                schema=service,
                pool=pool,
                logs=logs,
                projections=list(runner_projections.values()),
                keys=SubjectKeys(service, master_key(settings)),
            )
            count = await runner.rebuild(owner, projection)
            return count, list((await runner.stalls[projection].all()).values())
        finally:
            await owner.close()
            await pool.close()

    with one_off_database(settings) as database_url:
        count, stalls = asyncio.run(rebuild(database_url))
    print(f"rebuilt {service}.{projection}: {count} events replayed")
    for stall in stalls:
        # Every other tenant is complete; these stop at the event they cannot apply, and
        # the running service retries them (`mpks retry` after a fix).
        print(
            f"stalled: tenant {stall.tenant} at position {stall.position}: {stall.reason}",
            file=sys.stderr,
        )
    return 1 if stalls else 0


def _rebuild_reaction(
    settings: Settings, definition: ServiceDefinition, source: str, reaction: Reaction
) -> int:
    """A read model of `source`'s events, replayed from `source`'s events feed over HTTP
    (`shared.messaging.rebuild`): that service must be running."""
    service = definition.name
    feed = FeedClient(settings, source, service)
    dispatch = Dispatch(reaction, EventCatalogue(SERVICES[source].define().aggregates))

    async def rebuild(database_url: str) -> tuple[int, dict[str, str]]:
        await migrate_service(definition, database_url, settings)
        pool = await create_pool(app_database_url(settings, database_url), max_size=2)
        try:
            return await rebuild_reaction(
                pool, service, reaction, dispatch, feed, sorted(province_codes())
            )
        finally:
            await pool.close()

    with one_off_database(settings) as database_url:
        try:
            count, failed = asyncio.run(rebuild(database_url))
        except SourceUnavailable as exc:
            print(
                f"mpks rebuild: {exc} — {service}.{reaction.name} is rebuilt from {source}'s "
                f"events feed at {feed.base_url}: start {source} first",
                file=sys.stderr,
            )
            return 1
    print(f"rebuilt {service}.{reaction.name}: {count} events of {source} replayed")
    for tenant, reason in sorted(failed.items()):
        print(f"not rebuilt: tenant {tenant} (its rows kept): {reason}", file=sys.stderr)
    return 1 if failed else 0


def run_retry(settings: Settings, service: str, tenant: str | None) -> int:
    """Ask the running service to retry its stalled followers and refused deadlines now
    (after a fix)."""

    async def retry(database_url: str) -> tuple[int, int]:
        conn = await asyncpg.connect(database_url)
        try:
            return (
                await request_retry(conn, service, tenant),
                await request_deadline_retry(conn, service, tenant),
            )
        finally:
            await conn.close()

    with one_off_database(settings) as database_url:
        stalls, deadlines = asyncio.run(retry(database_url))
    print(f"{service}: {stalls} stalled follower(s) will be retried within a second or two")
    print(f"{service}: {deadlines} refused deadline(s) will be issued at the scheduler's next pass")
    return 0


def _wait_ready(
    urls: dict[str, str], children: dict[str, subprocess.Popen[bytes]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending:
        for name, url in list(pending.items()):
            if children[name].poll() is not None:
                raise RuntimeError(f"{name} exited during start-up; see its log")
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.2)


def run_up(settings: Settings, *, demo: bool, services: list[str]) -> int:
    started = time.monotonic()
    stack, settings = _with_stack(settings)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        asyncio.run(_migrate_all(settings, services))
        log_dir = settings.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MPKS_DATABASE_URL": str(settings.database_url),
            "MPKS_NATS_URL": str(settings.nats_url),
            # One process per service does everything, whatever the shell exports.
            "MPKS_ROLE": ProcessRole.ALL,
        }
        for name in services:
            log = (log_dir / f"{name}.log").open("ab")
            children[name] = subprocess.Popen(
                [sys.executable, "-m", "mpks.main", "serve", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: the terminal's Ctrl-C reaches us, and we stop them in order.
                start_new_session=True,
            )
        urls = {name: settings.service_url(name) for name in services}
        _wait_ready(urls, children, timeout=120)
        if demo:
            from mpks.demo import load_demo

            print(load_demo(settings, urls))
        _print_banner(settings, stack, urls, log_dir, time.monotonic() - started)
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with code {child.returncode}; stopping", file=sys.stderr)
                    stopping = True
            time.sleep(0.3)
        return 0
    finally:
        print("stopping services...", file=sys.stderr)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        stack.stop()
        print("stopped.", file=sys.stderr)


def _print_banner(
    settings: Settings, stack: DevStack, urls: dict[str, str], log_dir: Path, seconds: float
) -> None:
    def origin(part: str) -> str:
        return "embedded" if part in stack.embedded else "configured"

    lines = [
        "",
        f"MPKS is running ({seconds:.1f}s to ready)",
        f"  PostgreSQL ({origin('postgres')}): {settings.database_url}",
        f"  NATS ({origin('nats')}):       {_without_password(str(settings.nats_url))}",
    ]
    for name, url in urls.items():
        lines.append(f"  {name:<9} {url}   docs: {url}/docs")
    lines += [
        f"  logs:     {log_dir}/<service>.log",
        "",
        "Get a token (development key):",
        "  .venv/bin/mpks token --role wilayah_admin --tenant 35",
        "then e.g.:",
        '  curl -H "Authorization: Bearer $TOKEN" '
        f"{urls.get('registry', 'http://127.0.0.1:8101')}/v1/tenants/35/institutions",
        "",
        "Ctrl-C stops everything; data stays under " + str(settings.data_dir),
    ]
    print("\n".join(lines), flush=True)


def _without_password(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    return urlunparse(
        parsed._replace(netloc=f"{parsed.username}:***@{parsed.hostname}:{parsed.port}")
    )
