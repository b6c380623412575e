"""`mpks serve --role`: an API process records commands and serves reads but runs no relay,
projections or consumers (and needs no NATS); a worker process runs those and answers only
its probes and metrics. Together, in separate runtimes, they do what one `all` process does.
Each on its own database and subject prefix: no other test's service projects these events.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
import uvicorn
from litestar import Litestar

from services.bootstrap import build_app
from shared.auth import Role
from shared.devstack.stack import DevStack
from shared.http.reads import POSITION_HEADER
from shared.messaging.streams import Subjects
from shared.settings import ProcessRole, Settings
from tests.helpers import auth, eventually, fresh_database, own_streams

pytestmark = pytest.mark.timeout(120)

TENANT = "35"
INSTITUTIONS = f"/v1/tenants/{TENANT}/institutions"


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a real HTTP server in this process (its lifespan starts its runtime)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the service did not start")
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def own_settings(backing: DevStack, settings: Settings) -> AsyncIterator[Settings]:
    async with (
        fresh_database(backing.database_url, "roles") as database_url,
        own_streams(backing.nats_url, "roles") as prefix,
    ):
        yield settings.replace(database_url=database_url, nats_prefix=prefix)


async def _published(settings: Settings) -> int:
    nc = await nats.connect(str(settings.nats_url))
    try:
        stream = Subjects(settings.nats_prefix).stream("registry")
        return (await nc.jetstream().stream_info(stream)).state.messages
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await nc.close()


async def test_an_api_process_records_a_command_and_a_worker_process_projects_it(
    own_settings: Settings, token: Any
) -> None:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    api_app = build_app("registry", own_settings.replace(role=ProcessRole.API))
    async with serving(api_app) as api:
        created = await api.post(
            INSTITUTIONS,
            json={"name": "LKSA Dua Peran", "kind": "lksa", "pdm": "3578"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        assert int(created.headers[POSITION_HEADER]) > 0
        record = f"{INSTITUTIONS}/{created.json()['id']}"

        ready = await api.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "role": "api",
            "runs": ["commands", "reads"],
            "checks": {"postgres": True},
            "tasks": {},
            "stalls": [],
            "deadlines": {"overdue": 0, "oldest_overdue": None, "refused": 0, "refusals": []},
        }
        # Nobody projects or relays yet: the command is in the log only.
        await asyncio.sleep(0.5)
        assert (await api.get(record, headers=admin)).status_code == 404
        assert await _published(own_settings) == 0

        worker_app = build_app("registry", own_settings.replace(role=ProcessRole.WORKER))
        async with serving(worker_app) as worker:

            async def projected() -> bool:
                return (await api.get(record, headers=admin)).status_code == 200

            await eventually(projected)
            await eventually(lambda: _published_is(own_settings, 1))

            ready = await worker.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "ready",
                "role": "worker",
                "runs": ["relay", "projections", "checkpoints", "scheduler"],
                "checks": {"postgres": True, "nats": True},
                "tasks": {},
                "stalls": [],
                "deadlines": {"overdue": 0, "oldest_overdue": None, "refused": 0, "refusals": []},
            }
            assert (await worker.get("/health/live")).status_code == 200
            metrics = await worker.get("/metrics")
            assert metrics.status_code == 200
            assert "mpks_relay_lag_events" in metrics.text
            assert "mpks_deadlines_overdue 0.0" in metrics.text
            assert "mpks_deadlines_refused 0.0" in metrics.text
            # A worker takes no commands and serves no reads.
            refused = await worker.post(
                INSTITUTIONS,
                json={"name": "LKSA Salah Alamat", "kind": "lksa", "pdm": "3578"},
                headers=admin,
            )
            assert refused.status_code == 404, refused.text
            assert (await worker.get(record, headers=admin)).status_code == 404


async def _published_is(settings: Settings, count: int) -> bool:
    return await _published(settings) == count


async def test_a_worker_of_a_service_that_follows_others_runs_its_consumers(
    own_settings: Settings,
) -> None:
    async with serving(build_app("cases", own_settings.replace(role=ProcessRole.WORKER))) as w:
        ready = (await w.get("/health/ready")).json()
        assert ready["role"] == "worker"
        assert ready["runs"] == [
            "relay",
            "projections",
            "checkpoints",
            "scheduler",
            "consumer:cases-from-registry",
        ]
