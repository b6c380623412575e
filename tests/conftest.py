"""Test infrastructure: real PostgreSQL and real NATS JetStream, never fakes.

When MPKS_DATABASE_URL and MPKS_NATS_URL are set (CI uses the machine's own servers) the
tests use those; otherwise they boot the embedded stack once for the session. Each session
gets a fresh database and its own NATS subject prefix, so runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest
import uvicorn

from services.bootstrap import SERVICES, build_app
from shared.auth import Role, mint_dev_token
from shared.devstack.stack import DevStack
from shared.settings import Settings
from tests.helpers import fresh_database, own_streams


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def backing() -> Iterator[DevStack]:
    # Outside pytest's temp folder: as root the embedded PostgreSQL runs as another user
    # that must reach its data folder, and pytest resets its base folder to 0700.
    scratch = Path(tempfile.mkdtemp(prefix="mpks-test-stack-"))
    stack = DevStack(
        scratch,
        os.environ.get("MPKS_DATABASE_URL") or None,
        os.environ.get("MPKS_NATS_URL") or None,
        pg_port=free_port(),
        nats_port=free_port(),
    )
    with stack:
        yield stack
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
async def database_url(backing: DevStack) -> AsyncIterator[str]:
    async with fresh_database(backing.database_url, "test") as url:
        yield url


@pytest.fixture(scope="session")
async def settings(database_url: str, backing: DevStack) -> AsyncIterator[Settings]:
    async with own_streams(backing.nats_url, "test") as prefix:
        yield Settings(
            database_url=database_url,
            nats_url=backing.nats_url,
            nats_prefix=prefix,
            service_urls={name: f"http://127.0.0.1:{free_port()}" for name in SERVICES},
            eventstore_pool_size=2,
            eventstore_pool_overflow=2,
            readmodel_pool_size=4,
            # The fuzzer and every test read the public routes from 127.0.0.1; the limit
            # itself is tested on an app of its own (tests/e2e/test_directory.py).
            public_rate_limit=1_000_000,
        )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """The declared services, each a real HTTP server on its own port, in this process."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    urls: dict[str, str] = {}
    for name in SERVICES:
        url = settings.service_url(name)
        config = uvicorn.Config(
            build_app(name, settings),
            host="127.0.0.1",
            port=urlparse(url).port or 80,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"{name} did not start")
            await asyncio.sleep(0.05)
        servers.append((server, task))
        urls[name] = url
    yield urls
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*(task for _, task in servers), return_exceptions=True)


@pytest.fixture
async def owner(settings: Settings) -> AsyncIterator[asyncpg.Connection[Any]]:
    """The migrating login (table owner, superuser in development): sees every tenant.
    The services under test run on their own login (`mpks_app`, `shared.db.roles`), which
    their migration creates, as in production."""
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def token(settings: Settings) -> Any:
    def make(
        tenant: str,
        *roles: Role,
        sub: str = "tester",
        pdm: str | None = None,
        institution: str | None = None,
    ) -> str:
        return mint_dev_token(
            settings,
            sub=sub,
            tenant=tenant,
            roles=list(roles),
            pdm=pdm,
            institution=institution,
        )

    return make
