"""One vertical slice through each service, and the registry → cases reaction over NATS."""

from __future__ import annotations

from typing import Any

import httpx

from shared.auth import Role
from tests.helpers import auth, eventually


async def test_institution_reaches_registry_read_model_and_cases_directory(
    services: dict[str, str], token: Any
) -> None:
    admin = token("35", Role.WILAYAH_ADMIN)
    async with httpx.AsyncClient(headers=auth(admin), timeout=10) as http:
        created = await http.post(
            f"{services['registry']}/v1/tenants/35/institutions",
            json={"name": "LKSA Muhammadiyah Gubeng", "kind": "lksa", "pdm": "3578"},
        )
        assert created.status_code == 201, created.text
        institution_id = created.json()["id"]
        assert created.json()["version"] == 1

        async def registry_has_it() -> Any:
            r = await http.get(
                f"{services['registry']}/v1/tenants/35/institutions/{institution_id}"
            )
            return r.json() if r.status_code == 200 else None

        view = await eventually(registry_has_it)
        assert view["name"] == "LKSA Muhammadiyah Gubeng"
        assert view["status"] == "active"

        async def cases_knows_it() -> Any:
            r = await http.get(f"{services['cases']}/v1/tenants/35/directory/institutions")
            return [e for e in r.json() if e["institution_id"] == institution_id]

        entry = (await eventually(cases_knows_it))[0]
        assert entry["name"] == "LKSA Muhammadiyah Gubeng"

        worker = token("35", Role.CASE_WORKER, sub="caseworker-1")
        complaint = await http.post(
            f"{services['cases']}/v1/tenants/35/complaints",
            json={
                "channel": "phone",
                "summary": "Anak asuh melaporkan jadwal kunjungan keluarga dibatalkan.",
                "concerns_child": True,
                "institution_id": institution_id,
            },
            headers=auth(worker),
        )
        assert complaint.status_code == 201, complaint.text
        complaint_id = complaint.json()["id"]

        async def complaint_readable() -> Any:
            r = await http.get(f"{services['cases']}/v1/tenants/35/complaints/{complaint_id}")
            return r.json() if r.status_code == 200 else None

        stored = await eventually(complaint_readable)
        assert stored["institution_id"] == institution_id
        assert stored["received_by"] == "caseworker-1"


async def test_complaint_about_unknown_institution_is_refused_naming_the_field(
    services: dict[str, str], token: Any
) -> None:
    worker = token("35", Role.CASE_WORKER)
    async with httpx.AsyncClient(headers=auth(worker), timeout=10) as http:
        r = await http.post(
            f"{services['cases']}/v1/tenants/35/complaints",
            json={
                "channel": "web",
                "summary": "Keluhan tentang lembaga yang tidak terdaftar.",
                "institution_id": "00000000-0000-4000-8000-000000000001",
            },
        )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "institution_id"


async def test_worker_registration_is_read_back_through_hr_projection(
    services: dict[str, str], token: Any
) -> None:
    officer = token("34", Role.HR_OFFICER)
    async with httpx.AsyncClient(headers=auth(officer), timeout=10) as http:
        r = await http.post(
            f"{services['hr']}/v1/tenants/34/workers",
            json={"full_name": "Nur Hidayah", "birth_date": "1985-01-21", "pdm": "3471"},
        )
        assert r.status_code == 201, r.text
        worker_id = r.json()["id"]

        async def readable() -> Any:
            got = await http.get(f"{services['hr']}/v1/tenants/34/workers/{worker_id}")
            return got.json() if got.status_code == 200 else None

        view = await eventually(readable)
        assert view["full_name"] == "Nur Hidayah"
        assert view["birth_date"] == "1985-01-21"

        too_young = await http.post(
            f"{services['hr']}/v1/tenants/34/workers",
            json={"full_name": "Anak Muda", "birth_date": "2015-01-01"},
        )
        assert too_young.status_code == 422
        assert too_young.json()["errors"][0]["field"] == "birth_date"


async def test_closing_an_institution_flags_the_complaints_about_it_once(
    services: dict[str, str], token: Any
) -> None:
    """Registry → NATS → cases' process manager → a command in cases' own log."""
    registry = f"{services['registry']}/v1/tenants/35"
    cases = f"{services['cases']}/v1/tenants/35"
    async with httpx.AsyncClient(headers=auth(token("35", Role.WILAYAH_ADMIN)), timeout=10) as http:
        created = await http.post(
            f"{registry}/institutions",
            json={
                "name": "Rumah Singgah Muhammadiyah Sidoarjo",
                "kind": "rumah_singgah",
                "pdm": "3515",
            },
        )
        institution_id = created.json()["id"]

        async def cases_knows_it() -> Any:
            r = await http.get(f"{cases}/directory/institutions")
            return [e for e in r.json() if e["institution_id"] == institution_id]

        await eventually(cases_knows_it)
        about = {
            "channel": "walk_in",
            "summary": "Dua anak tidur di lantai sejak Oktober.",
            "institution_id": institution_id,
        }
        complaint_ids = [
            (await http.post(f"{cases}/complaints", json=about)).json()["id"] for _ in range(2)
        ]
        elsewhere = (
            await http.post(f"{cases}/complaints", json={**about, "institution_id": None})
        ).json()["id"]

        async def received() -> Any:
            r = await http.get(f"{cases}/complaints", params={"limit": 500})
            return {c["id"] for c in r.json()} >= {*complaint_ids, elsewhere}

        await eventually(received)
        reason = "Keputusan rapat pleno No. 40/KEP/2026: izin operasional dicabut"
        closed = await http.post(
            f"{registry}/institutions/{institution_id}/close", json={"reason": reason}
        )
        assert closed.status_code == 200, closed.text

        async def flagged() -> Any:
            views = [(await http.get(f"{cases}/complaints/{c}")).json() for c in complaint_ids]
            return views if all(v["flags"] for v in views) else None

        for view in await eventually(flagged):
            assert view["flags"] == ["institution_closed"]
            assert view["version"] == 2
        assert (await http.get(f"{cases}/complaints/{elsewhere}")).json()["flags"] == []

        events = (await http.get(f"{cases}/events", params={"after": 0, "limit": 1000})).json()[
            "events"
        ]
    flags = [e for e in events if e["event"] == "Flagged" and e["aggregate_id"] in complaint_ids]
    assert len(flags) == 2
    for event in flags:
        assert event["meta"]["actor"] == "process-manager:when-institution-closed-flag-complaints"
        assert event["meta"]["reason"] == f"institution closed: {reason}"
        assert event["meta"]["causation_id"].startswith("registry.35.")
