"""Issue 10, an institution's profile, officers and governance timeline through the
registry's API on real PostgreSQL and NATS: the rules refuse naming the field and record
nothing, a closed institution only reads, each role does what it may, officers' personal
data never leaves the service in plaintext and erasure blanks it, the timeline keeps the
log's order."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from shared.auth import Role
from shared.http.reads import MIN_POSITION_HEADER, POSITION_HEADER
from shared.personal.fields import ERASED
from shared.settings import Settings
from tests.e2e.test_personal_data import nats_payloads
from tests.helpers import auth, eventually

TENANT = "93"  # Papua Selatan: no other test writes here
PDM = "9301"  # Kabupaten Merauke
OTHER_PDM = "9302"
REASON = "SK PDM Merauke No. 12/KEP/III.0/D/2026"
# Distinctive values, found nowhere else: any trace of them outside the service is a leak.
HEAD = "Yohanes Kaize Mahuze"
HEAD_NIK = "9301045807790003"
HEAD_PHONE = "+62 811 4455 6677"
FINANCE = "Theresia Gebze Ndiken"
FINANCE_NIK = "9301046107850004"


def leaks(text: str | bytes) -> list[str]:
    haystack = text.decode() if isinstance(text, bytes) else text
    words = [w for s in (HEAD, FINANCE) for w in s.split()]
    return [w for w in [*words, HEAD_NIK, FINANCE_NIK, HEAD_PHONE] if w in haystack]


class Registry:
    """The registry's API for one institution, as one caller."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.base = base
        self.at = "0"

    async def register(self, name: str, pdm: str = PDM) -> str:
        r = await self.http.post(
            f"{self.base}/institutions", json={"name": name, "kind": "lksa", "pdm": pdm}
        )
        assert r.status_code == 201, r.text
        self.at = r.headers[POSITION_HEADER]
        return str(r.json()["id"])

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        r = await self.http.post(f"{self.base}/{path}", json=body, headers=headers)
        if POSITION_HEADER in r.headers:
            self.at = r.headers[POSITION_HEADER]
        return r

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(
            f"{self.base}/{path}", params=params, headers={MIN_POSITION_HEADER: self.at}
        )

    def appointment(self, role: str, name: str, nik: str, start: str, end: str) -> dict[str, Any]:
        return {
            "role": role,
            "full_name": name,
            "nik": nik,
            "term_start": start,
            "term_end": end,
            "reason": REASON,
        }


def refused(r: httpx.Response, status: int, field: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field], r.text


async def events_of(registry: Registry, institution: str) -> list[dict[str, Any]]:
    feed = (await registry.http.get(f"{registry.base}/events", params={"limit": 1000})).json()
    return [e for e in feed["events"] if e["aggregate_id"] == institution]


async def test_profile_officers_and_their_timeline(
    services: dict[str, str], token: Any, settings: Settings, owner: asyncpg.Connection[Any]
) -> None:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-93"))
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        registry = Registry(http, f"{services['registry']}/v1/tenants/{TENANT}")
        institution = await registry.register("LKSA Muhammadiyah Merauke")
        profile = f"institutions/{institution}/profile"
        officers = f"institutions/{institution}/officers"

        update = {
            "address": {"line": "Jl. Raya Mandala No. 5, Merauke", "regency": PDM},
            "capacity": 40,
            "services": ["residential_care", "education"],
            "contact": {"phone": "+62 971 321 000", "email": "lksa.merauke@contoh.id"},
            "beneficiaries": {"period": "2025", "counts": {"children": 38, "families": 12}},
        }
        r = await registry.post(profile, update)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 6  # one event per kind of change
        view = (await registry.get(profile)).json()
        assert (view["address"], view["regency"], view["capacity"]) == (
            "Jl. Raya Mandala No. 5, Merauke",
            PDM,
            40,
        )
        assert view["services"] == ["residential_care", "education"]
        assert view["beneficiaries"][0]["counts"]["children"] == 38
        assert (view["name"], view["status"], view["version"]) == (
            "LKSA Muhammadiyah Merauke",
            "active",
            6,
        )
        # The same again: nothing changes, nothing is recorded.
        again = await registry.post(profile, update)
        assert again.json()["version"] == 6

        # A regency of another province, and a malformed one.
        outside = {"address": {"line": "Jl. Darmo 1", "regency": "3578"}}
        refused(await registry.post(profile, outside), 422, "address.regency")
        refused(
            await registry.post(profile, {"address": {"line": "Jl. Darmo", "regency": "9370"}}),
            422,
            "address.regency",
        )
        bad_email = await registry.post(profile, {"contact": {"email": "not-an-email"}})
        assert bad_email.status_code in (400, 422), bad_email.text
        assert "email" in bad_email.text

        head = registry.appointment("head", HEAD, HEAD_NIK, "2023-01-01", "2027-12-31")
        r = await registry.post(officers, {**head, "phone": HEAD_PHONE})
        assert r.status_code == 200, r.text
        assert not leaks(r.text)
        finance = registry.appointment(
            "finance_officer", FINANCE, FINANCE_NIK, "2023-01-01", "2027-12-31"
        )
        assert (await registry.post(officers, finance)).status_code == 200
        version = (await registry.get(profile)).json()["version"]

        # A second head while the first serves: refused naming the field, nothing recorded.
        second = registry.appointment(
            "head", "Petrus Gebze", "9301040101800001", "2026-01-01", "2030-12-31"
        )
        r = await registry.post(officers, second)
        refused(r, 422, "role")
        assert "dismiss" in r.json()["errors"][0]["message"]
        refused(
            await registry.post(
                officers,
                registry.appointment(
                    "finance_officer", "Maria Kaize", "9301040101800002", "2024-06-01", "2025-06-01"
                ),
            ),
            422,
            "role",
        )
        # A term ending before it starts.
        backwards = registry.appointment(
            "secretary", "Agus Mahuze", "9301040101800003", "2026-05-01", "2026-04-30"
        )
        refused(await registry.post(officers, backwards), 422, "term_end")
        assert (await registry.get(profile)).json()["version"] == version
        appointed = [
            e for e in await events_of(registry, institution) if e["event"] == "OfficerAppointed"
        ]
        assert len(appointed) == 2

        # Listed masked, unmasked for the administrator.
        listed = (await registry.get(officers)).json()
        by_role = {o["role"]: o for o in listed}
        assert by_role["head"]["full_name"] == "Y*** K*** M***"
        assert HEAD_NIK not in str(listed)
        assert by_role["head"]["serving"] is True
        full = {o["role"]: o for o in (await registry.get(officers, unmask="true")).json()}
        assert (full["head"]["full_name"], full["head"]["nik"], full["head"]["phone"]) == (
            HEAD,
            HEAD_NIK,
            HEAD_PHONE,
        )
        head_id = full["head"]["id"]

        # Dismissed: a new head may be appointed from that day.
        dismissed = await registry.post(
            f"{officers}/{head_id}/dismiss", {"reason": REASON, "dismissed_on": "2026-01-01"}
        )
        assert dismissed.status_code == 200, dismissed.text
        refused(
            await registry.post(f"{officers}/{head_id}/dismiss", {"reason": REASON}),
            422,
            "officer_id",
        )
        assert (await registry.post(officers, second)).status_code == 200

        # The timeline: every governance change in the log's order, with who and why.
        closed = await registry.post(f"institutions/{institution}/close", {"reason": REASON})
        assert closed.status_code == 200, closed.text
        timeline = (await registry.get(f"institutions/{institution}/governance")).json()
        entries = timeline["entries"]
        assert [e["event"] for e in entries] == [
            "Registered",
            "AddressChanged",
            "CapacityChanged",
            "ServicesChanged",
            "ContactChanged",
            "BeneficiariesReported",
            "OfficerAppointed",
            "OfficerAppointed",
            "OfficerDismissed",
            "OfficerAppointed",
            "Closed",
        ]
        positions = [e["position"] for e in entries]
        assert positions == sorted(positions)
        assert [e["version"] for e in entries] == list(range(1, 12))
        assert timeline["version"] == 11
        head_line = entries[6]
        assert (head_line["officer_id"], head_line["officer_name"]) == (head_id, "Y*** K*** M***")
        assert head_line["details"]["role"] == "head"
        assert "full_name" not in head_line["details"]
        assert "nik" not in head_line["details"]
        assert (head_line["actor"], head_line["reason"]) == ("admin-93", REASON)
        assert entries[-1]["reason"] == REASON
        assert not leaks(str(timeline))

        # Closed: every change is refused, naming the status; reads go on.
        for path, body in (
            (profile, {"capacity": 10}),
            (
                officers,
                registry.appointment(
                    "secretary", "Agus Mahuze", "9301040101800003", "2026-05-01", "2027-04-30"
                ),
            ),
            (f"{officers}/{full['finance_officer']['id']}/dismiss", {"reason": REASON}),
        ):
            refused(await registry.post(path, body), 422, "status")
        assert (await registry.get(profile)).json()["version"] == 11

        # The events feed, the raw log rows and NATS carry the officers' data sealed.
        feed = (await http.get(f"{registry.base}/events", params={"limit": 1000})).text
        assert '"$enc"' in feed
        assert not leaks(feed)

    rows = await owner.fetch(f"SELECT state FROM registry_t{TENANT}.registry_events")
    assert any(b'"$enc"' in bytes(r["state"]) for r in rows)
    assert not [leaks(bytes(r["state"])) for r in rows if leaks(bytes(r["state"]))]

    async def published() -> list[bytes]:
        messages = await nats_payloads(settings, "registry", TENANT)
        assert any(b"OfficerAppointed" in m for m in messages)
        return messages

    messages = await eventually(published)
    assert not [leaks(m) for m in messages if leaks(m)]


async def test_each_role_does_what_it_may(services: dict[str, str], token: Any) -> None:
    base = f"{services['registry']}/v1/tenants/{TENANT}"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        registry = Registry(http, base)
        institution = await registry.register("Panti Asuhan Muhammadiyah Boven Digoel", OTHER_PDM)
        elsewhere = await registry.register("LKSA Aisyiyah Merauke")
    profile = f"{base}/institutions/{institution}/profile"
    officers = f"{base}/institutions/{institution}/officers"
    head = {
        "role": "head",
        "full_name": "Simon Kaize",
        "nik": "9302040101800009",
        "term_start": "2026-01-01",
        "term_end": "2030-12-31",
        "reason": REASON,
    }

    async def as_(headers: dict[str, str], url: str, body: dict[str, Any]) -> int:
        async with httpx.AsyncClient(timeout=15, headers=headers) as http:
            return (await http.post(url, json=body)).status_code

    staff = auth(token(TENANT, Role.INSTITUTION_STAFF, institution=institution))
    other_staff = auth(token(TENANT, Role.INSTITUTION_STAFF, institution=elsewhere))
    operator = auth(token(TENANT, Role.PDM_OPERATOR, pdm=OTHER_PDM))
    other_operator = auth(token(TENANT, Role.PDM_OPERATOR, pdm=PDM))
    auditor = auth(token(TENANT, Role.AUDITOR))
    # Its own staff keep the profile, and may not appoint its head.
    assert await as_(staff, profile, {"capacity": 25}) == 200
    assert await as_(staff, officers, head) == 403
    assert await as_(other_staff, profile, {"capacity": 26}) in (403, 404)
    # The PDM operator appoints inside its PDM only.
    assert await as_(other_operator, officers, head) in (403, 404)
    assert await as_(operator, officers, head) == 200
    # Auditors read, never write, never unmask.
    assert await as_(auditor, profile, {"capacity": 27}) == 403
    async with httpx.AsyncClient(timeout=15, headers=auditor) as http:

        async def listed() -> Any:
            r = await http.get(officers)
            return r.json() if r.status_code == 200 and r.json() else None

        [officer] = await eventually(listed)
        assert officer["full_name"] == "S*** K***"
        assert (await http.get(officers, params={"unmask": "true"})).status_code == 403
        assert (await http.get(profile)).json()["capacity"] == 25
        timeline = (await http.get(f"{base}/institutions/{institution}/governance")).json()
        assert [e["event"] for e in timeline["entries"]][-2:] == [
            "CapacityChanged",
            "OfficerAppointed",
        ]
    # Staff of the institution read its officers; to staff of another it is not there.
    async with httpx.AsyncClient(timeout=15) as http:
        assert len((await http.get(officers, headers=staff)).json()) == 1
        assert (await http.get(officers, headers=other_staff)).status_code == 404
        assert (await http.get(profile, headers=other_staff)).status_code == 404


async def test_erasing_an_officer_blanks_them_everywhere(
    services: dict[str, str], token: Any, owner: asyncpg.Connection[Any]
) -> None:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    name = f"Fransiska Ndiken Basik {uuid4().hex[:6]}"
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        registry = Registry(http, f"{services['registry']}/v1/tenants/{TENANT}")
        institution = await registry.register("Rumah Singgah Muhammadiyah Merauke")
        officers = f"institutions/{institution}/officers"
        r = await registry.post(
            officers,
            {
                **registry.appointment(
                    "secretary", name, "9301045507900008", "2025-01-01", "2029-12-31"
                ),
                "phone": "+62 813 0000 9999",
            },
        )
        assert r.status_code == 200, r.text
        [officer] = (await registry.get(officers, unmask="true")).json()
        assert officer["full_name"] == name

        done = await registry.post(f"subjects/{officer['id']}/erase", {"reason": REASON})
        assert done.status_code == 200, done.text
        [erased] = (await registry.get(officers, unmask="true")).json()
        assert (erased["full_name"], erased["nik"], erased["phone"]) == (ERASED, ERASED, ERASED)
        assert erased["role"] == "secretary"
        timeline = (
            await registry.get(f"institutions/{institution}/governance", unmask="true")
        ).json()
        assert timeline["entries"][-1]["officer_name"] == ERASED
        # The institution's history replays, with nothing of the officer in it.
        history = await http.get(f"{registry.base}/institutions/{institution}/history")
        assert history.status_code == 200
        assert name.split()[0] not in history.text

    tables = await owner.fetch(
        "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
        "WHERE schemaname = 'registry'"
    )
    assert {"registry.officers", "registry.governance_timeline"} <= {t["name"] for t in tables}
    for table in tables:
        dump = await owner.fetchval(f"SELECT string_agg(t::text, '|') FROM {table['name']} t")
        assert name not in (dump or ""), table["name"]
        assert "9301045507900008" not in (dump or ""), table["name"]
