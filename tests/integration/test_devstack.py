"""Integration tests for the embedded dev stack (real PostgreSQL and NATS).

Every server here runs on a freshly picked free port, so the machine's own
PostgreSQL (5432) and NATS (4222) are never touched.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import psycopg
import pytest

from mpks.up import ensure_database
from shared.db.pool import tenant_transaction
from shared.db.roles import APP_ROLE
from shared.devstack.postgres import EmbeddedPostgres
from shared.devstack.stack import DevStack
from shared.settings import Settings
from tests.helpers import own_streams, register_institution_in, running

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A scratch folder outside pytest's own: as root, PostgreSQL runs as another user that
    must be able to reach it, and any pytest session resets its base folder to 0700."""
    path = Path(tempfile.mkdtemp(prefix="mpks-devstack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _write_state(database_url: str, nats_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)")
        await conn.execute("INSERT INTO kept VALUES (1, 'survives restart')")
    finally:
        await conn.close()

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.x", b"hi")
        assert ack.stream == "T"
        assert ack.seq == 1
    finally:
        await nc.close()


async def _read_state(database_url: str, nats_url: str) -> tuple[str, int, bytes]:
    conn = await asyncpg.connect(database_url)
    try:
        note = await conn.fetchval("SELECT note FROM kept WHERE id = 1")
    finally:
        await conn.close()

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("T")
        msg = await js.get_msg("T", 1)
    finally:
        await nc.close()
    assert msg.data is not None
    return note, info.state.messages, msg.data


def test_embedded_stack_boots_and_keeps_data_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    pg_port, nats_port = _free_port(), _free_port()

    with DevStack(data_dir, None, None, pg_port=pg_port, nats_port=nats_port) as stack:
        assert stack.embedded == ["postgres", "nats"]
        assert stack.database_url == f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
        assert stack.nats_url == f"nats://127.0.0.1:{nats_port}"
        asyncio.run(_write_state(stack.database_url, stack.nats_url))

    # Both servers must really be gone, not merely forgotten.
    assert not _port_accepts(pg_port)
    assert not _port_accepts(nats_port)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    with DevStack(data_dir, None, None, pg_port=pg_port, nats_port=nats_port) as stack:
        assert stack.embedded == ["postgres", "nats"]
        note, messages, payload = asyncio.run(_read_state(stack.database_url, stack.nats_url))

    assert note == "survives restart"
    assert messages == 1
    assert payload == b"hi"
    assert not _port_accepts(pg_port)
    assert not _port_accepts(nats_port)


def test_embedded_postgres_reuses_a_server_left_running(tmp_path: Path) -> None:
    port = _free_port()
    first = EmbeddedPostgres(tmp_path / "pg", port)
    url = first.start()
    try:
        # A crashed owner leaves the server running; the next start adopts it.
        second = EmbeddedPostgres(tmp_path / "pg", port)
        assert second.start() == url
        second.stop()
        assert not _port_accepts(port)
    finally:
        first.stop()


def test_pgserver_fallback_starts_and_answers(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgserver"
    server = EmbeddedPostgres(data_dir, _free_port(), prefer_system_binaries=False)
    try:
        url = server.start()
    except RuntimeError as exc:
        if "pgserver could not start" not in str(exc):
            raise
        pytest.skip(f"pgserver cannot start PostgreSQL on this machine: {exc}")
    try:
        assert server.backend == "pgserver"
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
            conn.execute("INSERT INTO kept VALUES (7)")

        async def _asyncpg_sees_row() -> int:
            conn = await asyncpg.connect(url)
            try:
                value: int = await conn.fetchval("SELECT id FROM kept")
                return value
            finally:
                await conn.close()

        assert asyncio.run(_asyncpg_sees_row()) == 7
    finally:
        server.stop()
    assert not (data_dir / "postmaster.pid").exists()

    with (
        EmbeddedPostgres(data_dir, _free_port(), prefer_system_binaries=False) as restarted,
        psycopg.connect(restarted.url) as conn,
    ):
        row = conn.execute("SELECT id FROM kept").fetchone()
    assert row == (7,)


def test_stack_with_external_urls_starts_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "unused"
    database_url = "postgresql://app@db.example.invalid:5432/app"
    nats_url = "nats://nats.example.invalid:4222"

    with DevStack(data_dir, database_url, nats_url) as stack:
        assert stack.embedded == []
        assert stack.database_url == database_url
        assert stack.nats_url == nats_url

    assert not data_dir.exists()


async def test_the_platform_runs_on_the_pgserver_fallback(
    tmp_path: Path, settings: Settings
) -> None:
    """A machine with only Python has no PostgreSQL binaries: the wheel's server (socket
    only) must carry a service end to end — commands, RLS read models, NOTIFY, the relay."""
    stack = DevStack(
        tmp_path, None, settings.nats_url, pg_port=_free_port(), prefer_system_binaries=False
    )
    try:
        stack.start()
    except RuntimeError as exc:
        if "pgserver could not start" not in str(exc):
            raise
        pytest.skip(f"pgserver cannot start PostgreSQL on this machine: {exc}")
    try:
        database_url = await ensure_database(stack.database_url, "mpks")
        async with (
            own_streams(str(settings.nats_url), "pgserver") as prefix,
            running(
                "registry", settings.replace(database_url=database_url, nats_prefix=prefix)
            ) as runtime,
        ):
            await register_institution_in(
                runtime, "35", "LKSA Muhammadiyah Wiyung", pdm="3578", actor="fallback-test"
            )
            # The one event, applied by each read model (the kernel's access log and
            # snapshots included).
            assert await runtime.projections.catch_up() == len(runtime.projections.projections)
            assert await runtime.relay.publish_pending() == 1
            async with tenant_transaction(runtime.db, "35") as conn:
                names = [
                    r["name"] for r in await conn.fetch("SELECT name FROM registry.institutions")
                ]
            assert names == ["LKSA Muhammadiyah Wiyung"]
    finally:
        stack.stop()


async def test_the_embedded_cluster_holds_the_services_to_their_password(
    tmp_path: Path, settings: Settings
) -> None:
    """The embedded cluster is set up as production is: the owner migrates, the services
    log in as their own role and must give its password."""
    stack = DevStack(tmp_path, None, settings.nats_url, pg_port=_free_port())
    stack.start()
    try:
        if stack.embedded != ["postgres"] or "host=" in stack.database_url:
            pytest.skip("no PostgreSQL binaries on this machine (the pgserver fallback ran)")
        database_url = await ensure_database(stack.database_url, "mpks")
        async with (
            own_streams(str(settings.nats_url), "roles") as prefix,
            running(
                "registry", settings.replace(database_url=database_url, nats_prefix=prefix)
            ) as runtime,
        ):
            await register_institution_in(
                runtime, "35", "LKSA Muhammadiyah Wiyung", pdm="3578", actor="roles-test"
            )
            # The one event, applied by each read model (the kernel's access log and
            # snapshots included).
            assert await runtime.projections.catch_up() == len(runtime.projections.projections)
            async with runtime.db.acquire() as conn:
                assert await conn.fetchval("SELECT session_user") == APP_ROLE
        without_password = database_url.replace(
            "postgresql://postgres@", f"postgresql://{APP_ROLE}@"
        )
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(without_password)
        wrong = database_url.replace("postgresql://postgres@", f"postgresql://{APP_ROLE}:guess@")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(wrong)
    finally:
        stack.stop()
