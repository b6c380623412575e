"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlparse, urlunparse
from uuid import UUID

import asyncpg
import msgspec
import nats

from services.bootstrap import build_runtime
from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import InstitutionType, Owner
from shared.eventstore.context import CommandContext
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import Outcome
from shared.service_layer.ports import Clock
from shared.settings import Settings
from shared.tenancy.provinces import local_date


@dataclass
class MovableClock:
    """A clock a test sets and moves: the time a service's commands, scheduler and reads
    of "today" see."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def today(self, province: str) -> date:
        return local_date(province, self.moment)


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def eventually(check: Any, within: float = 15.0, interval: float = 0.1) -> Any:
    """Poll an async check until it returns something truthy (read models are eventual)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def fresh_database(server_url: str, label: str) -> AsyncIterator[str]:
    """A new, empty database on the server (dropped afterwards): tests never share data."""
    name = f"mpks_{label}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield urlunparse(urlparse(server_url)._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def own_streams(nats_url: str, label: str) -> AsyncIterator[str]:
    """A NATS subject prefix of one's own; its streams are deleted afterwards."""
    prefix = f"mpks{label}{secrets.token_hex(3)}"
    try:
        yield prefix
    finally:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for stream in await js.streams_info():
            if stream.config.name and stream.config.name.startswith(prefix.upper()):
                await js.delete_stream(stream.config.name)
        await nc.close()


@asynccontextmanager
async def own_settings(
    server_url: str, nats_url: str, settings: Settings, label: str
) -> AsyncIterator[Settings]:
    """`settings` on a new database and a NATS prefix of their own (both removed
    afterwards): for a module that writes where the others expect data of their own, or
    that must not see the session's running services at work in its tenants."""
    async with (
        fresh_database(server_url, label) as url,
        own_streams(nats_url, label) as prefix,
    ):
        yield settings.replace(database_url=url, nats_prefix=prefix)


@asynccontextmanager
async def running(
    name: str, settings: Settings, *, clock: Clock | None = None
) -> AsyncIterator[ServiceRuntime]:
    """A service's parts (stores, pools, NATS, relay, projections) without background tasks;
    `clock`: the time its commands and scheduler see."""
    runtime = build_runtime(name, settings, run_background=False)
    if clock is not None:
        runtime.clock = clock
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def register_institution_in(
    runtime: ServiceRuntime,
    tenant: str,
    name: str,
    *,
    owner: Owner = Owner.MUHAMMADIYAH,
    pdm: str | None = None,
    actor: str = "tester",
) -> UUID:
    """Register an institution through the registry's command path (no HTTP); its id."""
    command = RegisterInstitution(
        name=name, kind=InstitutionType.LKSA, owner=owner, pdm=pdm or f"{tenant}71"
    )
    return accepted(await run_command(runtime, tenant, command, actor=actor)).id


def context(tenant: str, actor: str = "tester", **extra: Any) -> CommandContext:
    return CommandContext(
        tenant=tenant, actor=actor, correlation_id=f"c-{secrets.token_hex(4)}", **extra
    )


async def run_command(
    runtime: ServiceRuntime,
    tenant: str,
    command: Command,
    *,
    actor: str = "tester",
    ctx: CommandContext | None = None,
    **options: Any,
) -> Outcome:
    """A command through the service's bus, as a route or a process manager runs it."""
    return await runtime.bus.execute(command, ctx or context(tenant, actor), **options)


def accepted(outcome: Outcome) -> Accepted:
    return msgspec.json.decode(outcome.reply, type=Accepted)


async def expiries_of(runtime: ServiceRuntime, tenant: str, institution: UUID) -> int:
    """How many times the institution's accreditation expired in the tenant's log."""
    async with runtime.db.acquire() as conn:
        log = await runtime.logs.read(conn, tenant, after=0, limit=10_000)
    return sum(
        1
        for e in log
        if (e.aggregate, e.event) == ("Accreditation", "Expired")
        and e.data["institution_id"] == str(institution)
    )
