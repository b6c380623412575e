"""Auditors verify a tenant's logs (issue 9, point 5) over HTTP and with `mpks audit
verify`: intact and signed, or the first change made behind the service's back named, with
its position; checkpoints verify with the public key the service publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


@asynccontextmanager
async def tampered(settings: Settings, tenant: str, how: str) -> AsyncIterator[int]:
    """The tenant's second registry event edited or deleted behind the service's back (its
    position), and put back afterwards: the session's services share this database, and
    their health would report the broken chain to the tests after this one."""
    log = f"registry_t{tenant}.registry_events"
    owner = await asyncpg.connect(str(settings.database_url))
    try:
        row = await owner.fetchrow(
            f"SELECT * FROM {log} WHERE notification_id = "
            f"(SELECT min(notification_id) + 1 FROM {log})"
        )
        assert row is not None
        position = row["notification_id"]
        if how == "edit":
            await owner.execute(
                f"UPDATE {log} SET state = state || '\\x20'::bytea WHERE notification_id = $1",
                position,
            )
        else:
            await owner.execute(f"DELETE FROM {log} WHERE notification_id = $1", position)
        try:
            yield position
        finally:
            await owner.execute(f"DELETE FROM {log} WHERE notification_id = $1", position)
            await owner.execute(
                f"INSERT INTO {log} SELECT * FROM unnest($1::{log}[])", [tuple(row.values())]
            )
    finally:
        await owner.close()


async def _signed(settings: Settings, tenant: str) -> bool:
    """The worker has signed the registry log of `tenant` up to its head."""
    owner = await asyncpg.connect(str(settings.database_url))
    try:
        return bool(
            await owner.fetchval(
                f"""SELECT EXISTS (SELECT FROM registry.chain_checkpoints
                    WHERE tenant_id = $1 AND position =
                      (SELECT max(notification_id) FROM registry_t{tenant}.registry_events))""",
                tenant,
            )
        )
    finally:
        await owner.close()


async def test_an_auditor_verifies_the_log_and_sees_the_first_change_made_in_the_database(
    services: dict[str, str], token: Any, settings: Settings
) -> None:
    base = services["registry"]
    verify = f"{base}/v1/tenants/{TENANT}/audit/verify"
    auditor = auth(token(TENANT, Role.AUDITOR))
    async with httpx.AsyncClient(timeout=30) as http:
        await _register(http, base, TENANT, auth(token(TENANT, Role.WILAYAH_ADMIN)))

        # The worker signs the log's first checkpoint on its next pass.
        await eventually(lambda: _signed(settings, TENANT), within=30)
        report = (await http.get(verify, headers=auditor)).json()
        assert report["intact"] is True
        assert report["problem"] is None
        assert report["sources"] == ["database", "stream"]
        assert report["summary"].startswith(
            f"intact up to position {report['position']}, signed at"
        )
        assert report["signed"]["position"] == report["position"]
        key = (await http.get(f"{base}/v1/audit/chain-key", headers=auditor)).json()
        assert report["signed"]["key_id"] == key["key_id"]
        assert load_public_key(key["public_key_pem"].encode())

        # Only auditors and the national council; never another province.
        admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
        assert (await http.get(verify, headers=admin)).status_code == 403
        assert (await http.get(verify, headers=auth(token("72", Role.AUDITOR)))).status_code == 403
        national = auth(token("national", Role.NATIONAL_ADMIN))
        assert (await http.get(verify, headers=national)).json()["intact"] is True

        async with tampered(settings, TENANT, "edit") as position:
            report = (await http.get(verify, headers=auditor)).json()
        assert (await http.get(verify, headers=auditor)).json()["intact"] is True

    assert report["intact"] is False
    assert report["problem"]["kind"] == "altered"
    assert report["problem"]["position"] == position
    assert report["position"] == position - 1


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

    # Signed first, so the worker has no new event to check and sign (and no broken chain
    # to report) while the log is tampered with.
    await eventually(lambda: _signed(settings, CLI_TENANT), within=30)
    argv = ["audit", "verify", "--tenant", CLI_TENANT, "--service", "registry"]
    async with tampered(settings, CLI_TENANT, "delete") as removed:
        assert await asyncio.to_thread(main, argv) == 1
    err = capsys.readouterr().err
    assert f"registry tenant {CLI_TENANT}: removed at position {removed}: " in err
    assert await asyncio.to_thread(main, argv) == 0
