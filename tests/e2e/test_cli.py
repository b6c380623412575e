"""The `mpks` command as users run it: `up` starts the services and stops them cleanly on
Ctrl-C; `token` mints development tokens and refuses when a production key is set."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import uvicorn

import mpks.serve as serve_module
from mpks.main import main
from services.bootstrap import SERVICES, settings_from_env
from shared.auth import Role
from shared.settings import ProcessRole, Settings
from shared.tenancy import province_codes
from tests.conftest import free_port
from tests.helpers import eventually


def _start_up(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`mpks up` as a user runs it (what `make run` does), in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "mpks.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_up_serves_all_services_and_stops_cleanly_on_ctrl_c(
    settings: Settings, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "MPKS_DATABASE_URL": str(settings.database_url),
        "MPKS_NATS_URL": str(settings.nats_url),
        "MPKS_NATS_PREFIX": f"{settings.nats_prefix}up",
        "MPKS_DATA_DIR": str(tmp_path / "data"),
        "MPKS_REGISTRY_URL": f"http://127.0.0.1:{ports['registry']}",
        "MPKS_CASES_URL": f"http://127.0.0.1:{ports['cases']}",
        "MPKS_HR_URL": f"http://127.0.0.1:{ports['hr']}",
    }
    up = _start_up(env)
    try:
        async with httpx.AsyncClient(timeout=2) as http:

            async def all_ready() -> bool:
                if up.poll() is not None:
                    raise AssertionError(f"mpks up exited early: {up.communicate()[0]!r}")
                try:
                    answers = [
                        await http.get(f"http://127.0.0.1:{port}/health/ready")
                        for port in ports.values()
                    ]
                except httpx.HTTPError:
                    return False
                return all(a.status_code == 200 for a in answers)

            await eventually(all_ready, within=90, interval=0.3)
        up.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(up.communicate, timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, output
    text = output.decode()
    assert "MPKS is running" in text
    for port in ports.values():
        assert f"http://127.0.0.1:{port}/docs" in text
    assert "stopped." in text
    logs = tmp_path / "data" / "logs"
    assert {p.name for p in logs.iterdir()} == {f"{name}.log" for name in SERVICES}


def test_token_mints_a_verifiable_development_token(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["token", "--role", "wilayah_admin", "--tenant", "35", "--pdm", "3578"])
    assert code == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tenant"] == "35"
    assert claims["roles"] == ["wilayah_admin"]
    assert claims["pdm"] == "3578"


def test_token_is_refused_with_a_production_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MPKS_JWT_SECRET", "a-real-production-secret")
    code = main(["token", "--role", "auditor", "--tenant", "35"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "production key" in captured.err


def test_token_for_an_unknown_province_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--role", "auditor", "--tenant", "99"]) == 2
    assert "unknown tenant" in capsys.readouterr().err


async def test_status_reports_every_service_ready(
    services: dict[str, str], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from mpks.status import status

    assert await status(settings) == 0
    out = capsys.readouterr().out
    for name, url in services.items():
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert url in line
        assert "ready" in line
        assert "relay_lag" in line


def _start_serve(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mpks.main", "serve", "hr"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_serve_with_several_workers_answers_and_stops(settings: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MPKS_DATABASE_URL": str(settings.database_url),
        "MPKS_NATS_URL": str(settings.nats_url),
        "MPKS_NATS_PREFIX": f"{settings.nats_prefix}workers",
        "MPKS_HR_URL": f"http://127.0.0.1:{port}",
        "MPKS_WORKERS": "2",
    }
    serve = _start_serve(env)
    try:
        async with httpx.AsyncClient(timeout=2) as http:

            async def ready() -> bool:
                if serve.poll() is not None:
                    raise AssertionError(f"serve exited early: {serve.communicate()[0]!r}")
                try:
                    r = await http.get(f"http://127.0.0.1:{port}/health/ready")
                except httpx.HTTPError:
                    return False
                return r.status_code == 200

            await eventually(ready, within=60, interval=0.3)
        serve.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(serve.communicate, timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, output
    # Two worker processes started (each logs its own start-up).
    assert output.decode().count("Application startup complete") == 2


def test_rebuild_replays_a_read_model_from_the_event_logs(
    services: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MPKS_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("MPKS_NATS_URL", str(settings.nats_url))
    monkeypatch.setenv("MPKS_NATS_PREFIX", settings.nats_prefix)
    assert main(["rebuild", "registry", "institutions"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt registry.institutions:" in out

    async def compare() -> tuple[int, int]:
        conn = await asyncpg.connect(str(settings.database_url))
        try:
            rows = await conn.fetchval("SELECT count(*) FROM registry.institutions")
            registered = 0
            for code in sorted(province_codes()):
                registered += await conn.fetchval(
                    f"SELECT count(*) FROM registry_t{code}.registry_events "
                    "WHERE topic = 'Institution.Registered'"
                )
            return int(rows), registered
        finally:
            await conn.close()

    rows, registered = asyncio.run(compare())
    assert rows == registered


async def test_rebuild_replays_a_read_model_of_another_services_events_from_its_feed(
    services: dict[str, str],
    settings: Settings,
    token: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Cases' directory of institutions is kept from the registry's events (a reaction):
    it is rebuilt from the registry's events feed, damaged rows mended, rows nothing
    recorded gone, while both services run."""
    tenant = "14"  # Riau: no other test of the shared database writes here
    admin = {"Authorization": f"Bearer {token(tenant, Role.WILAYAH_ADMIN)}"}
    async with httpx.AsyncClient(base_url=services["registry"], headers=admin) as http:
        registered = await http.post(
            f"/v1/tenants/{tenant}/institutions",
            json={"name": "LKSA Muhammadiyah Pekanbaru", "kind": "lksa", "pdm": "1471"},
        )
        assert registered.status_code == 201, registered.text
    institution = registered.json()["id"]
    owner = await asyncpg.connect(str(settings.database_url))
    try:

        async def directory() -> dict[str, str]:
            rows = await owner.fetch(
                "SELECT institution_id, name FROM cases.institution_directory WHERE tenant_id = $1",
                tenant,
            )
            return {str(r["institution_id"]): r["name"] for r in rows}

        async def learned() -> bool:
            return institution in await directory()

        await eventually(learned)
        expected = await directory()
        await owner.execute(
            "UPDATE cases.institution_directory SET name = 'rusak' WHERE tenant_id = $1", tenant
        )
        await owner.execute(
            """INSERT INTO cases.institution_directory
                 (tenant_id, institution_id, name, kind, status, pdm, source_version)
               VALUES ($1, gen_random_uuid(), 'Tidak Pernah Terdaftar', 'lksa', 'active',
                       NULL, 1)""",
            tenant,
        )
        for name, value in {
            "MPKS_DATABASE_URL": str(settings.database_url),
            "MPKS_NATS_URL": str(settings.nats_url),
            "MPKS_NATS_PREFIX": settings.nats_prefix,
            "MPKS_REGISTRY_URL": services["registry"],
        }.items():
            monkeypatch.setenv(name, value)
        # In a thread: the services answer the feed from this test's event loop.
        assert await asyncio.to_thread(main, ["rebuild", "cases", "institution-directory"]) == 0
        assert "rebuilt cases.institution-directory:" in capsys.readouterr().out
        assert await directory() == expected
    finally:
        await owner.close()


def test_rebuild_of_an_unknown_projection_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rebuild", "registry", "no-such-projection"]) == 2
    assert "has no projection" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "environment", "role"),
    [
        ([], {}, ProcessRole.ALL),
        (["--role", "api"], {}, ProcessRole.API),
        (["--role", "worker"], {"MPKS_ROLE": "api"}, ProcessRole.WORKER),
        ([], {"MPKS_ROLE": "worker"}, ProcessRole.WORKER),
    ],
)
def test_serve_runs_the_role_asked_for(
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    environment: dict[str, str],
    role: ProcessRole,
) -> None:
    monkeypatch.delenv("MPKS_ROLE", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    served: list[Settings] = []

    def fake_serve(name: str, settings: Settings, *, port: int | None = None) -> int:
        served.append(settings)
        return 0

    monkeypatch.setattr(serve_module, "serve", fake_serve)
    assert main(["serve", "registry", *argv]) == 0
    assert [s.role for s in served] == [role]


def test_serve_hands_the_role_to_each_worker_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set (and so restored afterwards) before serve() overwrites them.
    monkeypatch.setenv("MPKS_ROLE", "all")
    monkeypatch.setenv(serve_module.SERVICE_ENV, "")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    settings = Settings(workers=2, role=ProcessRole.WORKER, service_urls={"registry": "http://h:1"})
    serve_module.serve("registry", settings)
    assert os.environ["MPKS_ROLE"] == "worker"
    assert settings_from_env().role is ProcessRole.WORKER
