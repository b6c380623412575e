"""A dependency outage, for real: a service wired to a private PostgreSQL (or NATS) that the
test stops and starts again. Clients must get a quick 503 with Retry-After while PostgreSQL is
down, a not-ready probe, and service again as soon as it is back; without NATS commands go
on (the relay catches up later) and readiness says degraded.

The machine's own servers (which other tests use) are never stopped: every server stopped
here is private to the test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import uvicorn
from litestar import Litestar

from mpks.up import ensure_database
from services.bootstrap import build_app, build_runtime
from shared.auth import Role
from shared.devstack.nats import EmbeddedNats
from shared.devstack.postgres import EmbeddedPostgres
from shared.http.app import create_app
from shared.messaging.streams import Subjects
from shared.settings import Settings
from tests.helpers import auth, eventually, fresh_database, own_streams

pytestmark = pytest.mark.timeout(300)

TENANT = "35"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Outside pytest's temp folder: as root, PostgreSQL runs as another user that must
    reach its data folder, and pytest resets its base folder to 0700."""
    path = Path(tempfile.mkdtemp(prefix="mpks-outage-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[str]:
    """The app as a real HTTP server in this process (its lifespan starts the runtime)."""
    port = _free_port()
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
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def registry_on_private_postgres(
    scratch: Path, settings: Settings, label: str, **changes: object
) -> AsyncIterator[tuple[EmbeddedPostgres, httpx.AsyncClient]]:
    """The registry served over HTTP on a PostgreSQL of the test's own, which the test may
    stop, start and freeze (stopped at the end)."""
    postgres = EmbeddedPostgres(scratch / "pg", _free_port())
    server_url = await asyncio.to_thread(postgres.start)
    try:
        database_url = await ensure_database(server_url, "mpks")
        async with (
            own_streams(str(settings.nats_url), label) as prefix,
            serving(
                build_app(
                    "registry",
                    settings.replace(database_url=database_url, nats_prefix=prefix, **changes),
                )
            ) as base,
            httpx.AsyncClient(base_url=base, timeout=120) as http,
        ):
            yield postgres, http
    finally:
        await asyncio.to_thread(postgres.stop)


class Client:
    def __init__(self, http: httpx.AsyncClient, token: Any) -> None:
        self.http = http
        self.admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
        self.url = f"/v1/tenants/{TENANT}/institutions"

    async def register(self, name: str) -> httpx.Response:
        return await self.http.post(
            self.url, json={"name": name, "kind": "lksa", "pdm": "3578"}, headers=self.admin
        )

    async def read(self, institution_id: str, **headers: str) -> httpx.Response:
        return await self.http.get(
            f"{self.url}/{institution_id}", headers={**self.admin, **headers}
        )


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503
    assert response.json()["code"] == "unavailable"


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response: httpx.Response = await request
    return response, time.monotonic() - started


async def test_postgres_outage_answers_503_quickly_and_recovers_at_once(
    scratch: Path, settings: Settings, token: Any
) -> None:
    async with registry_on_private_postgres(scratch, settings, "outage") as (postgres, http):
        client = Client(http, token)
        created = await client.register("LKSA Sebelum Padam")
        assert created.status_code == 201, created.text
        institution_id = created.json()["id"]

        async def projected() -> bool:
            return (await client.read(institution_id)).status_code == 200

        await eventually(projected)

        await asyncio.to_thread(postgres.stop)

        command, command_seconds = await _timed(client.register("LKSA Saat Padam"))
        _assert_unavailable(command)
        read, read_seconds = await _timed(client.read(institution_id))
        _assert_unavailable(read)
        ready = await http.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["postgres"] is False
        # A second command finds the pool already empty: no slower than the first.
        again, again_seconds = await _timed(client.register("LKSA Saat Padam Lagi"))
        _assert_unavailable(again)

        # More commands at once than the pool has connections: none queues for long.
        burst_started = time.monotonic()
        burst = await asyncio.gather(*(client.register(f"LKSA Antrian {i}") for i in range(24)))
        burst_seconds = time.monotonic() - burst_started
        for response in burst:
            _assert_unavailable(response)

        await asyncio.to_thread(postgres.start)
        back = time.monotonic()

        async def command_succeeds() -> httpx.Response | None:
            r = await client.register("LKSA Setelah Pulih")
            if r.status_code != 201:
                _assert_unavailable(r)
                return None
            return r

        after = await eventually(command_succeeds, within=60, interval=0.05)
        recovered_seconds = time.monotonic() - back

        async def read_succeeds() -> httpx.Response | None:
            r = await client.read(institution_id)
            return r if r.status_code == 200 else None

        await eventually(read_succeeds, within=60, interval=0.05)
        read_recovered_seconds = time.monotonic() - back
        assert (await http.get("/health/ready")).status_code == 200

        # The read models follow the log again: what was written after the return is read.
        async def written_after_is_read() -> bool:
            r = await client.read(
                after.json()["id"],
                **{"Mpks-Min-Position": after.headers["mpks-position"], "Prefer": "wait=10"},
            )
            return r.status_code == 200

        await eventually(written_after_is_read, within=60)

        print(
            f"\noutage: command 503 after {command_seconds:.2f}s "
            f"(next {again_seconds:.2f}s, 24 at once {burst_seconds:.2f}s), "
            f"read 503 after {read_seconds:.2f}s; "
            f"back: first 201 after {recovered_seconds:.2f}s, "
            f"first read 200 after {read_recovered_seconds:.2f}s"
        )
        # Generous bounds for a busy 2-core machine; before the fix a command hung
        # 30-50 s and then answered 500, and commands failed 8-9 s after the return.
        assert command_seconds < 15
        assert again_seconds < 15
        assert burst_seconds < 12  # 24 commands, 4 connections: 18 s if each queued
        assert read_seconds < 15
        assert recovered_seconds < 5


def _server_processes(postgres: EmbeddedPostgres) -> list[int]:
    """The postmaster of a private PostgreSQL and every process it started."""
    postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return [postmaster, *(pid for pid, parent in parents.items() if parent == postmaster)]


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the server's processes in /proc")
async def test_a_frozen_postgres_answers_503_after_the_statement_timeout_and_nothing_twice(
    scratch: Path, settings: Settings, token: Any
) -> None:
    """PostgreSQL stops answering without closing anything (a frozen host, a partition):
    no connection error ever comes, so only the client's own timeout ends the wait. A
    command gets a 503 after it instead of hanging as long as the freeze; its retry with
    the same Idempotency-Key after the thaw records it once, whether or not the server
    went on to commit the first attempt when it woke."""
    async with registry_on_private_postgres(
        scratch, settings, "frozen", statement_timeout_seconds=2.0
    ) as (postgres, http):
        client = Client(http, token)
        before = await client.register("LKSA Sebelum Beku")
        assert before.status_code == 201, before.text
        frozen = {**client.admin, "Idempotency-Key": "beku-1"}
        body = {"name": "LKSA Saat Beku", "kind": "lksa", "pdm": "3578"}

        processes = _server_processes(postgres)
        for pid in processes:
            os.kill(pid, signal.SIGSTOP)
        try:
            answer, seconds = await _timed(http.post(client.url, json=body, headers=frozen))
        finally:
            for pid in processes:
                os.kill(pid, signal.SIGCONT)
        _assert_unavailable(answer)
        # The statement timeout (2 s), then up to the connection wait (3 s) for the
        # connection's cancellation before it is dropped; before: as long as the freeze.
        assert seconds < 8, seconds

        async def retried() -> httpx.Response | None:
            r = await http.post(client.url, json=body, headers=frozen)
            if r.status_code not in (200, 201):
                _assert_unavailable(r)
                return None
            return r

        first = await eventually(retried, within=60, interval=0.1)
        again = await http.post(client.url, json=body, headers=frozen)
        assert again.json()["id"] == first.json()["id"]

        async def listed() -> list[str] | None:
            r = await http.get(
                client.url, params={"q": "Saat Beku", "limit": 10}, headers=client.admin
            )
            ids = [row["id"] for row in r.json()]
            return ids or None

        assert await eventually(listed) == [first.json()["id"]]
        print(f"\nfrozen PostgreSQL: 503 after {seconds:.2f}s")


async def test_without_nats_commands_go_on_and_readiness_says_degraded(
    scratch: Path, settings: Settings, token: Any
) -> None:
    nats_server = EmbeddedNats(scratch / "nats", _free_port())
    nats_url = await asyncio.to_thread(nats_server.start)
    assert settings.database_url is not None
    try:
        async with (
            # Its own database: this service's relay must not publish the shared test
            # database's events to a NATS nobody else reads.
            fresh_database(settings.database_url, "natsdown") as database_url,
            serving(
                build_app(
                    "registry", settings.replace(database_url=database_url, nats_url=nats_url)
                )
            ) as base,
            httpx.AsyncClient(base_url=base, timeout=60) as http,
        ):
            client = Client(http, token)
            ready = await http.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ready"

            await asyncio.to_thread(nats_server.stop)

            created = await client.register("LKSA Tanpa NATS")
            assert created.status_code == 201, created.text

            async def degraded() -> httpx.Response | None:
                r = await http.get("/health/ready")
                return r if r.json()["checks"]["nats"] is False else None

            ready = await eventually(degraded)
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert (body["status"], body["checks"]) == (
                "degraded",
                {"postgres": True, "nats": False},
            )
            assert body["stalls"] == []

            async def readable() -> bool:
                return (await client.read(created.json()["id"])).status_code == 200

            await eventually(readable)

            # NATS back (same store): the relay publishes what was committed meanwhile.
            await asyncio.to_thread(nats_server.start)
            watcher = await nats.connect(nats_url)
            try:
                stream = Subjects(settings.nats_prefix).stream("registry")

                async def published() -> bool:
                    info = await watcher.jetstream().stream_info(stream)
                    return info.state.messages >= 1

                await eventually(published, within=60)
            finally:
                await watcher.close()
    finally:
        await asyncio.to_thread(nats_server.stop)


async def test_reads_wait_a_bounded_time_for_a_busy_read_model_pool(
    settings: Settings, token: Any
) -> None:
    assert settings.database_url is not None
    async with (
        fresh_database(settings.database_url, "busy") as database_url,
        own_streams(str(settings.nats_url), "busy") as prefix,
    ):
        runtime = build_runtime(
            "registry", settings.replace(database_url=database_url, nats_prefix=prefix)
        )
        async with (
            serving(create_app(runtime)) as base,
            httpx.AsyncClient(base_url=base, timeout=60) as http,
        ):
            client = Client(http, token)
            created = await client.register("LKSA Ramai")
            assert created.status_code == 201, created.text
            institution_id = created.json()["id"]
            await eventually(
                lambda: _status_is(client.read(institution_id), 200),
            )

            held = [await runtime.db.acquire() for _ in range(runtime.db.get_max_size())]
            try:
                read, seconds = await _timed(client.read(institution_id))
                _assert_unavailable(read)
                assert seconds < 15  # before: waited for ever
            finally:
                for conn in held:
                    await runtime.db.release(conn)
            assert (await client.read(institution_id)).status_code == 200


async def _status_is(request: Any, status: int) -> bool:
    response: httpx.Response = await request
    return response.status_code == status
