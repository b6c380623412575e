"""Any record and any list as of any date over HTTP (issue 9, points 2 and 3): `?as_of=` on
the GET of a record answers its state then with the version it had, under the same tenant
and scope rules as every read; the institution directory and the worker register answer as
they were; a worker as of a date shows their name to hr's readers as the worker now does,
erased once erased.

Tenant 63 (Kalimantan Selatan) belongs to this module.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from shared.auth import Role
from shared.http.reads import MIN_POSITION_HEADER, POSITION_HEADER
from shared.personal.fields import ERASED
from tests.helpers import auth

TENANT = "63"
MICROSECOND = timedelta(microseconds=1)
WITA = timezone(timedelta(hours=8))


def at(moment: str | datetime, shift: timedelta = timedelta(0)) -> dict[str, str]:
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return {"as_of": (when + shift).isoformat()}


async def test_a_record_as_of_a_date_is_its_state_then_with_its_version(
    services: dict[str, str], token: Any
) -> None:
    base = f"{services['registry']}/v1/tenants/{TENANT}/institutions"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    async with httpx.AsyncClient(timeout=15) as http:
        created = await http.post(
            base,
            json={"name": "LKSA Muhammadiyah Banjarmasin", "kind": "lksa", "pdm": "6371"},
            headers=admin,
        )
        one = f"{base}/{created.json()['id']}"
        await http.post(f"{one}/rename", json={"name": "LKSA Kota Banjarmasin"}, headers=admin)
        suspend = await http.post(
            f"{one}/suspend", json={"reason": "audit keuangan"}, headers=admin
        )
        auditor = auth(token(TENANT, Role.AUDITOR), **{"Accept-Language": "en"})
        entries = (await http.get(f"{one}/history", headers=auditor)).json()["entries"]
        registered, renamed, suspended = (e["occurred_at"] for e in entries)

        # Between the rename and the suspension: the new name, still active, version 2.
        then = await http.get(one, params=at(suspended, -MICROSECOND), headers=auditor)
        assert then.status_code == 200, then.text
        body = then.json()
        assert (body["aggregate"], body["version"]) == ("Institution", 2)
        assert body["state"]["name"] == "LKSA Kota Banjarmasin"
        assert body["state"]["status"] == "active"
        assert datetime.fromisoformat(body["changed_at"]) == datetime.fromisoformat(renamed)
        # Right after registration: the first name.
        first = (await http.get(one, params=at(registered), headers=auditor)).json()
        assert (first["version"], first["state"]["name"]) == (1, "LKSA Muhammadiyah Banjarmasin")
        # Now, the same moment given in WITA (+08:00) instead of UTC.
        latest = (
            await http.get(
                one,
                params={"as_of": datetime.fromisoformat(suspended).astimezone(WITA).isoformat()},
                headers=auditor,
            )
        ).json()
        assert (latest["version"], latest["state"]["status"]) == (3, "suspended")
        # Without as_of, the read model as before, with its ETag.
        caught_up = {MIN_POSITION_HEADER: suspend.headers[POSITION_HEADER]}
        current = await http.get(one, headers={**auditor, **caught_up})
        assert current.json()["status"] == "suspended"
        assert current.headers["ETag"] == '"3"'

        # Before it was registered: a 404 that says so.
        before = await http.get(one, params=at(registered, -MICROSECOND), headers=auditor)
        assert before.status_code == 404, before.text
        assert "did not exist yet" in before.json()["detail"]
        assert before.json()["errors"][0]["field"] == "as_of"

        # The same scope and tenant rules as the record's other reads.
        own_pdm = auth(token(TENANT, Role.PDM_OPERATOR, pdm="6371"))
        assert (await http.get(one, params=at(renamed), headers=own_pdm)).status_code == 200
        elsewhere = auth(token(TENANT, Role.PDM_OPERATOR, pdm="6372"), **{"Accept-Language": "en"})
        hidden = await http.get(one, params=at(renamed), headers=elsewhere)
        assert hidden.status_code == 404
        assert "did not exist" not in hidden.json()["detail"]
        assert (await http.get(one, params=at(registered, -MICROSECOND), headers=elsewhere)).json()[
            "detail"
        ] == hidden.json()["detail"]
        other_province = auth(token("64", Role.AUDITOR))
        assert (await http.get(one, params=at(renamed), headers=other_province)).status_code == 403
        # A worker's id is no institution.
        worker = await http.post(
            f"{services['hr']}/v1/tenants/{TENANT}/workers",
            json={"full_name": "Nur Aini", "birth_date": "1988-01-09", "pdm": "6371"},
            headers=admin,
        )
        wrong = await http.get(f"{base}/{worker.json()['id']}", params=at(renamed), headers=admin)
        assert wrong.status_code == 404

        # A moment needs its UTC offset, and must be a moment.
        for bad in ("2026-03-01T00:00:00", "yesterday", "0.5", "2026-02-30T00:00:00+07:00"):
            refused = await http.get(one, params={"as_of": bad}, headers=auditor)
            assert refused.status_code == 422, (bad, refused.text)
            assert [e["field"] for e in refused.json()["errors"]] == ["as_of"], refused.text


async def test_a_worker_as_of_a_date_shows_their_name_until_it_is_erased(
    services: dict[str, str], token: Any
) -> None:
    workers = f"{services['hr']}/v1/tenants/{TENANT}/workers"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    auditor = auth(token(TENANT, Role.AUDITOR))
    name = "Laksmi Puspitasari Handoko"
    async with httpx.AsyncClient(timeout=15) as http:
        created = await http.post(
            workers,
            json={"full_name": name, "birth_date": "1986-11-30", "pdm": "6371"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        worker = created.json()["id"]
        moment = at(datetime.now().astimezone())
        then = await http.get(f"{workers}/{worker}", params=moment, headers=auditor)
        assert then.status_code == 200, then.text
        assert then.json()["state"]["full_name"] == name

        erased = await http.post(
            f"{services['hr']}/v1/tenants/{TENANT}/subjects/{worker}/erase",
            json={"reason": "Permintaan penghapusan oleh subjek data"},
            headers=admin,
        )
        assert erased.status_code in (200, 201), erased.text
        after = await http.get(f"{workers}/{worker}", params=moment, headers=auditor)
        assert after.json()["state"]["full_name"] == ERASED


async def test_the_directory_and_the_register_as_of_a_date(
    services: dict[str, str], token: Any
) -> None:
    registry = f"{services['registry']}/v1/tenants/{TENANT}/institutions"
    hr = f"{services['hr']}/v1/tenants/{TENANT}/workers"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:

        async def register(url: str, body: dict[str, str]) -> tuple[str, str]:
            answer = await http.post(url, json=body)
            assert answer.status_code == 201, answer.text
            return answer.json()["id"], answer.headers[POSITION_HEADER]

        renamed, _ = await register(
            registry, {"name": "Panti Asuhan Amanah", "kind": "lksa", "pdm": "6372"}
        )
        closed, _ = await register(
            registry, {"name": "Rumah Singgah Barito", "kind": "rumah_singgah", "pdm": "6372"}
        )
        hired, _ = await register(
            hr, {"full_name": "Rahmat Hidayat", "birth_date": "1985-06-01", "pdm": "6372"}
        )
        moment = datetime.now().astimezone()
        await http.post(f"{registry}/{renamed}/rename", json={"name": "Panti Asuhan Amanah 2"})
        await http.post(f"{registry}/{closed}/close", json={"reason": "izin operasional habis"})
        later, registry_position = await register(
            registry, {"name": "PSKM Aisyiyah Banjarbaru", "kind": "pskm", "pdm": "6372"}
        )
        hired_later, hr_position = await register(
            hr, {"full_name": "Siti Maryam", "birth_date": "1990-02-03", "pdm": "6372"}
        )

        def ids(answer: httpx.Response) -> dict[str, dict[str, Any]]:
            assert answer.status_code == 200, answer.text
            return {row["id"]: row for row in answer.json()}

        wait_registry = {MIN_POSITION_HEADER: registry_position}
        then = ids(await http.get(registry, params=at(moment), headers=wait_registry))
        assert later not in then
        assert then[renamed]["name"] == "Panti Asuhan Amanah"
        assert then[closed]["status"] == "active"
        # Filters apply to the directory as it was.
        closed_then = ids(
            await http.get(
                registry, params={**at(moment), "status": "closed"}, headers=wait_registry
            )
        )
        assert closed not in closed_then
        now = ids(await http.get(registry))
        assert now[renamed]["name"] == "Panti Asuhan Amanah 2"
        assert now[closed]["status"] == "closed"
        assert later in now

        register_then = ids(
            await http.get(hr, params=at(moment), headers={MIN_POSITION_HEADER: hr_position})
        )
        assert hired in register_then
        assert hired_later not in register_then
        assert hired_later in ids(await http.get(hr))

        # A PDM operator sees its own PDM's past only.
        elsewhere = auth(token(TENANT, Role.PDM_OPERATOR, pdm="6371"))
        assert renamed not in ids(await http.get(registry, params=at(moment), headers=elsewhere))
        refused = await http.get(registry, params={"as_of": "2026-03-01"})
        assert refused.status_code == 422
        assert [e["field"] for e in refused.json()["errors"]] == ["as_of"]


async def test_the_api_documents_as_of(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        for service, resource, key in (
            ("registry", "institutions", "institution_id"),
            ("hr", "workers", "worker_id"),
            ("cases", "complaints", "complaint_id"),
        ):
            document = (await http.get(f"{services[service]}/docs/openapi.json")).json()
            paths = [f"/v1/tenants/{{tenant}}/{resource}/{{{key}}}"]
            if service != "cases":
                paths.append(f"/v1/tenants/{{tenant}}/{resource}")
            for path in paths:
                operation = document["paths"][path]["get"]
                [as_of] = [p for p in operation["parameters"] if p["name"] == "as_of"]
                assert as_of["in"] == "query"
                assert as_of["schema"]["format"] == "date-time", as_of
                assert as_of["schema"]["pattern"].endswith("[+-]\\d{2}:\\d{2})$"), as_of
                assert "UTC offset" in as_of["description"]
            record = document["paths"][paths[0]]["get"]["responses"]["200"]
            schemas = str(record["content"]["application/json"]["schema"])
            assert "RecordAsOf" in schemas, schemas
