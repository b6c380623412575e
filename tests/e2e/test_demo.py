"""The demo data set (`mpks up --demo`) against the running services: it shows Jawa Timur
whole (councils, institutions of every type under them with profile and officers, policies
in every state, accreditations of every grade, licences about to expire) and loading it again
changes nothing."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx

from mpks.demo import INSTITUTIONS, load_demo
from shared.auth import Role
from shared.settings import Settings
from tests.helpers import auth, eventually

TENANT = "35"


async def test_demo_shows_a_whole_province_and_loads_twice_without_change(
    services: dict[str, str], settings: Settings, token: Any
) -> None:
    # The loader is a blocking client: it runs beside the servers of this event loop.
    await asyncio.to_thread(load_demo, settings, services)
    auditor = auth(token(TENANT, Role.AUDITOR))
    base = f"{services['registry']}/v1/tenants/{TENANT}"

    async with httpx.AsyncClient(timeout=15) as http:

        async def read(path: str, **params: Any) -> Any:
            r = await http.get(f"{base}{path}", params=params, headers=auditor)
            assert r.status_code == 200, r.text
            return r.json()

        async def everything_projected() -> Any:
            # The last things loaded: the policies' decisions and the licences.
            policies = await read("/policies", limit=500)
            statuses = {p["title"]: p["status"] for p in policies}
            expiring = await read("/licences", expiring_within=30)
            expired = await read("/licences", expired="true")
            counts = await read("/accreditations/counts")
            if len(statuses) < 6 or not expiring or not expired or not counts["revoked"]:
                return None
            return statuses, expiring, expired, counts

        statuses, expiring, expired, counts = await eventually(everything_projected)
        assert statuses["Standar pengasuhan anak"] == "superseded"
        assert statuses["Standar pengasuhan anak (revisi 2026)"] == "approved"
        assert statuses["Jadwal kunjungan keluarga"] == "proposed"
        assert statuses["Penyaluran zakat produktif Sidoarjo"] == "revision_requested"
        assert statuses["Iuran wajib anggota cabang"] == "rejected"
        assert statuses["Penjangkauan lansia terlantar Kota Malang"] == "approved"
        assert {p["status"] for p in await read("/policies", limit=500)} >= {
            "proposed",
            "revision_requested",
            "approved",
            "rejected",
            "superseded",
        }
        assert all(counts[grade] > 0 for grade in ("a", "b", "c", "not_accredited", "revoked"))
        assert {row["kind"] for row in expiring} == {"operating"}
        assert any(row["kind"] == "operating" for row in expired)
        assert await read("/accreditations", expiring_within=90)

        units = {(u["kind"], u["code"]) for u in await read("/units", limit=500)}
        assert {("pdm", "3578"), ("pcm", "357813"), ("pda", "3573"), ("pca", "357303")} <= units
        rows = await read("/institutions", limit=500)
        demo = {i.name for i in INSTITUTIONS if i.tenant == TENANT}
        ours = [r for r in rows if r["name"] in demo]
        # Other modules of the session register names of the demo's too (Wiyung): by name.
        assert {r["name"] for r in ours} == demo
        assert len({r["kind"] for r in ours}) == 8

        wiyung = next(r for r in ours if r["name"] == "PSKM Muhammadiyah Wiyung")
        profile = await read(f"/institutions/{wiyung['id']}/profile")
        assert profile["regency"] == "3578"
        assert profile["beneficiaries"][0]["counts"]["children"] == 75
        assert profile["capacity"] == 90
        officers = await read(f"/institutions/{wiyung['id']}/officers")
        assert sorted(o["role"] for o in officers) == ["finance_officer", "head"]

        # Loading again, that day or a week later (`make run --demo` on the data kept under
        # .mpks): every command is replayed or already done, nothing is added.
        head = (await read("/events", after=10**18))["head"]
        await asyncio.to_thread(load_demo, settings, services)
        await asyncio.to_thread(load_demo, settings, services, date.today() + timedelta(days=7))
        # What the log gained meanwhile is the service's own doing (the access log of these
        # auditor reads, the scheduler expiring a past-due accreditation), none the loader's.
        added = (await read("/events", after=head, limit=500))["events"]
        assert not [e for e in added if e["meta"]["actor"].startswith("demo-")]
        assert len(await read("/institutions", limit=500)) == len(rows)
