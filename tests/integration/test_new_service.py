"""Adding a service needs no kernel change: a service defined here, in the test and nowhere
else, gets its URL from `MPKS_TOYSVC_URL`, is migrated, served and run by the kernel, and
the kernel's feed client (what another service would use to read it) finds it at that URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import uvicorn
from litestar import Controller, Litestar

from shared.auth import Role
from shared.domain.aggregate import AggregateRoot, event
from shared.http.app import create_app
from shared.http.commands import expose
from shared.http.reads import POSITION_HEADER
from shared.http.security import requires_roles, tenant_guard
from shared.messaging.feed import FeedClient
from shared.runtime import ServiceRuntime
from shared.service import ServiceDefinition
from shared.service_layer.commands import Command
from shared.service_layer.handlers import HandlerRegistry, handler_of
from shared.service_layer.unit_of_work import UnitOfWork
from shared.settings import Settings
from tests.conftest import free_port
from tests.helpers import auth


class Note(AggregateRoot):
    class Written(AggregateRoot.Created):
        text: str

    @event(Written)
    def __init__(self, text: str) -> None:
        self.text = text


class WriteNote(Command, frozen=True):
    """Write a note."""

    text: str


async def write_note(cmd: WriteNote, uow: UnitOfWork) -> Note:
    note = Note(text=cmd.text)
    uow.add(note)
    return note


class NoteController(Controller):
    path = "/v1/tenants/{tenant:str}/notes"
    guards = [tenant_guard]

    write = expose(WriteNote, "/", guards=[requires_roles(Role.WILAYAH_ADMIN)], status_code=201)


def toy_service(migrations: Path) -> ServiceDefinition:
    return ServiceDefinition(
        name="toysvc",
        title="A service the kernel never heard of",
        aggregates=[("Note", Note)],
        migrations=migrations,
        controllers=[NoteController],
        handlers=lambda: HandlerRegistry([handler_of(write_note)]),
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
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            written = await client.post(
                "/v1/tenants/35/notes",
                json={"text": "the kernel needed no change"},
                headers=auth(token("35", Role.WILAYAH_ADMIN), **{"Idempotency-Key": "note-1"}),
            )
            assert written.status_code == 201, written.text
            position = int(written.headers[POSITION_HEADER])
            assert (await client.get("/health/ready")).status_code == 200
            catalogue = await client.get(
                "/v1/catalogue/events", headers=auth(token("35", Role.WILAYAH_ADMIN))
            )
            assert catalogue.status_code == 200, catalogue.text
            assert "Note.Written" in catalogue.text

        feed = FeedClient(toy_settings, "toysvc", "another-service")
        assert (await feed.heads())["35"] == position
        [note] = await feed.read("35", 0, None)
        assert (note.service, note.event) == ("toysvc", "Written")
        assert note.data["text"] == "the kernel needed no change"
