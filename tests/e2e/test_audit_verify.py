"""Auditors verify a tenant's logs (issue 9, point 5) over HTTP and with `mpks audit
verify`: intact and signed, or the first change made behind the service's back named, with
its position; checkpoints verify with the public key the service publishes."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from mpks.main import main
from shared.audit.signing import load_public_key
from shared.auth import Role
from shared.settings import Settings
from tests.helpers import auth, eventually

TENANT = "73"  # Sulawesi Selatan
CLI_TENANT = "74"  # Sulawesi Tenggara


async def _register(
    http: httpx.AsyncClient, base: str, tenant: str, headers: dict[str, str]
) -> None:
    for n in range(3):
        created = await http.post(
            f"{base}/v1/tenants/{tenant}/institutions",
            json={"name": f"LKSA Makassar {n}", "kind": "lksa", "pdm": f"{tenant}71"},
            headers=headers,
        )
        assert created.status_code == 201, created.text


async def test_an_auditor_verifies_the_log_and_sees_the_first_change_made_in_the_database(
    services: dict[str, str], token: Any, settings: Settings
) -> None:
    base = services["registry"]
    verify = f"{base}/v1/tenants/{TENANT}/audit/verify"
    auditor = auth(token(TENANT, Role.AUDITOR))
    async with httpx.AsyncClient(timeout=30) as http:
        await _register(http, base, TENANT, auth(token(TENANT, Role.WILAYAH_ADMIN)))

        async def signed() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get(verify, headers=auditor)).json()
            return body if body["signed"] else None

        # The worker signs the log's first checkpoint on its next pass.
        report = await eventually(signed, within=30)
        assert report["intact"] is True
        assert report["problem"] is None
        assert report["sources"] == ["database", "stream"]
        assert report["summary"].startswith(f"intact up to position {report['position']}")
        key = (await http.get(f"{base}/v1/audit/chain-key", headers=auditor)).json()
        assert report["signed"]["key_id"] == key["key_id"]
        assert load_public_key(key["public_key_pem"].encode())

        # Only auditors and the national council; never another province.
        admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
        assert (await http.get(verify, headers=admin)).status_code == 403
        assert (await http.get(verify, headers=auth(token("72", Role.AUDITOR)))).status_code == 403
        national = auth(token("national", Role.NATIONAL_ADMIN))
        assert (await http.get(verify, headers=national)).json()["intact"] is True

        owner = await asyncpg.connect(str(settings.database_url))
        try:
            first = await owner.fetchval(
                f"SELECT min(notification_id) FROM registry_t{TENANT}.registry_events"
            )
            await owner.execute(
                f"UPDATE registry_t{TENANT}.registry_events SET state = state || '\\x20'::bytea "
                "WHERE notification_id = $1",
                first + 1,
            )
        finally:
            await owner.close()
        tampered = (await http.get(verify, headers=auditor)).json()

    assert tampered["intact"] is False
    assert tampered["problem"]["kind"] == "altered"
    assert tampered["problem"]["position"] == first + 1
    assert tampered["position"] == first


async def test_mpks_audit_verify_exits_non_zero_naming_the_position_of_a_removed_event(
    services: dict[str, str],
    token: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MPKS_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("MPKS_NATS_URL", str(settings.nats_url))
    monkeypatch.setenv("MPKS_NATS_PREFIX", settings.nats_prefix)

    async with httpx.AsyncClient(timeout=30) as http:
        admin = auth(token(CLI_TENANT, Role.WILAYAH_ADMIN))
        await _register(http, services["registry"], CLI_TENANT, admin)
    # In a thread of its own, as from a shell: the services keep serving in this loop.
    assert await asyncio.to_thread(main, ["audit", "verify", "--tenant", CLI_TENANT]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [
        f"{service} tenant {CLI_TENANT}" for service in ("cases", "hr", "registry")
    ]
    assert all(": intact up to position" in line for line in out)

    owner = await asyncpg.connect(str(settings.database_url))
    try:
        removed: int = await owner.fetchval(
            f"SELECT min(notification_id) + 1 FROM registry_t{CLI_TENANT}.registry_events"
        )
        await owner.execute(
            f"DELETE FROM registry_t{CLI_TENANT}.registry_events WHERE notification_id = $1",
            removed,
        )
    finally:
        await owner.close()
    argv = ["audit", "verify", "--tenant", CLI_TENANT, "--service", "registry"]
    assert await asyncio.to_thread(main, argv) == 1
    err = capsys.readouterr().err
    assert f"registry tenant {CLI_TENANT}: removed at position {removed}: " in err
