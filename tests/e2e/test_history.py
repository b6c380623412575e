"""The history of any record (issue 9, point 1): every event of it in order with who, when,
why, the event's name and version and each changed field before and after — for every
aggregate a service declares, from the kernel."""

from __future__ import annotations

from typing import Any

import httpx

from shared.auth import Role
from tests.helpers import auth

TENANT = "32"  # Jawa Barat


async def test_an_institutions_history_says_who_changed_what_when_and_why(
    services: dict[str, str], token: Any
) -> None:
    base = f"{services['registry']}/v1/tenants/{TENANT}/institutions"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-32"))
    async with httpx.AsyncClient(timeout=15) as http:
        created = await http.post(
            base, json={"name": "LKSA Aisyiyah Bogor", "kind": "lksa", "pdm": "3271"}, headers=admin
        )
        one = f"{base}/{created.json()['id']}"
        await http.post(f"{one}/rename", json={"name": "LKSA Aisyiyah Kota Bogor"}, headers=admin)
        reason = "Keputusan rapat pleno No. 5/KEP/2026"
        await http.post(f"{one}/suspend", json={"reason": reason}, headers=admin)

        auditor = auth(token(TENANT, Role.AUDITOR))
        history = await http.get(f"{one}/history", headers=auditor)
        assert history.status_code == 200, history.text
        body = history.json()
        # Another PDM's operator learns nothing of it; an unknown id is the same 404.
        elsewhere = auth(token(TENANT, Role.PDM_OPERATOR, pdm="3273"))
        assert (await http.get(f"{one}/history", headers=elsewhere)).status_code == 404
        missing = f"{base}/00000000-0000-4000-8000-000000000000/history"
        assert (await http.get(missing, headers=auditor)).status_code == 404
        # Another province's token never reads it.
        other = auth(token("34", Role.AUDITOR))
        assert (await http.get(f"{one}/history", headers=other)).status_code == 403

    assert (body["aggregate"], body["version"]) == ("Institution", 3)
    registered, renamed, suspended = body["entries"]
    assert [e["event"] for e in body["entries"]] == ["Registered", "Renamed", "Suspended"]
    assert [e["version"] for e in body["entries"]] == [1, 2, 3]
    assert {e["actor"] for e in body["entries"]} == {"admin-32"}
    assert registered["event_version"] == 2
    created_fields = {c["field"]: (c["before"], c["after"]) for c in registered["changes"]}
    assert created_fields["name"] == (None, "LKSA Aisyiyah Bogor")
    assert created_fields["status"] == (None, "active")
    assert renamed["changes"] == [
        {"field": "name", "before": "LKSA Aisyiyah Bogor", "after": "LKSA Aisyiyah Kota Bogor"}
    ]
    assert suspended["changes"] == [{"field": "status", "before": "active", "after": "suspended"}]
    assert suspended["reason"] == reason
    assert renamed["position"] < suspended["position"]
    assert registered["correlation_id"]


async def test_every_service_serves_the_history_of_its_records(
    services: dict[str, str], token: Any
) -> None:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        worker = await http.post(
            f"{services['hr']}/v1/tenants/{TENANT}/workers",
            json={"full_name": "Siti Rahmah", "birth_date": "1991-04-02", "pdm": "3271"},
        )
        complaint = await http.post(
            f"{services['cases']}/v1/tenants/{TENANT}/complaints",
            json={"channel": "phone", "summary": "Jadwal kunjungan dibatalkan."},
        )
        for service, resource, created, first in (
            ("hr", "workers", worker, "Registered"),
            ("cases", "complaints", complaint, "Received"),
        ):
            url = f"{services[service]}/v1/tenants/{TENANT}/{resource}/{created.json()['id']}"
            r = await http.get(f"{url}/history")
            assert r.status_code == 200, r.text
            [entry] = r.json()["entries"]
            assert entry["event"] == first
            assert entry["changes"]
