"""Adding a service needs no kernel change: a service defined here, in the test and nowhere
else, gets its URL from `MPKS_TOYSVC_URL`, is migrated, served and run by the kernel, and
the kernel's feed client (what another service would use to read it) finds it at that URL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import uvicorn
from litestar import Litestar

from shared.auth import Role
from shared.domain.aggregate import AggregateRoot, event
from shared.eventstore.commands import Decision
from shared.eventstore.context import CommandContext
from shared.eventstore.stores import TenantApplication
from shared.http.app import create_app
from shared.messaging.feed import FeedClient
from shared.runtime import ServiceRuntime
from shared.service import ServiceDefinition
from shared.settings import Settings
from tests.conftest import free_port
from tests.helpers import auth


class Note(AggregateRoot):
    class Written(AggregateRoot.Created):
        text: str

    @event(Written)
    def __init__(self, text: str) -> None:
        self.text = text


def write_note(app: TenantApplication, *, text: str) -> Decision:
    return Decision.saving(Note(text=text), status=201)


def toy_service(migrations: Path) -> ServiceDefinition:
    return ServiceDefinition(
        name="toysvc",
        title="A service the kernel never heard of",
        aggregates=[("Note", Note)],
        migrations=migrations,
        controllers=[],
    )


@asynccontextmanager
async def serving(app: Litestar, url: str) -> AsyncIterator[None]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=urlparse(url).port or 80, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the toy service did not start")
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def test_a_service_declared_outside_the_kernel_runs_and_is_found_at_its_url(
    settings: Settings, token: Any, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    assert settings.nats_url is not None
    url = f"http://127.0.0.1:{free_port()}"
    env = {
        "MPKS_DATABASE_URL": settings.database_url,
        "MPKS_NATS_URL": settings.nats_url,
        "MPKS_NATS_PREFIX": settings.nats_prefix,
        "MPKS_TOYSVC_URL": url,
    }
    # The composition root's part: the services it declares, each with a default port.
    toy_settings = Settings.from_env(env, service_ports={"toysvc": 1})
    assert toy_settings.service_url("toysvc") == url

    runtime = ServiceRuntime(
        definition=toy_service(tmp_path),
        settings=toy_settings,
        database_url=settings.database_url,
        nats_url=settings.nats_url,
    )
    async with serving(create_app(runtime), toy_settings.service_url("toysvc")):
        outcome = await runtime.commands.run(
            "35",
            CommandContext(tenant="35", actor="tester", correlation_id=secrets.token_hex(4)),
            partial(write_note, text="the kernel needed no change"),
        )
        assert outcome.status == 201, outcome

        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/health/ready")).status_code == 200
            catalogue = await client.get(
                "/v1/catalogue/events", headers=auth(token("35", Role.WILAYAH_ADMIN))
            )
            assert catalogue.status_code == 200, catalogue.text
            assert "Note.Written" in catalogue.text

        feed = FeedClient(toy_settings, "toysvc", "another-service")
        assert (await feed.heads())["35"] == outcome.position
        [written] = await feed.read("35", 0, None)
        assert (written.service, written.event) == ("toysvc", "Written")
        assert written.data["text"] == "the kernel needed no change"
