"""Auditors and the access log (issue 9, point 6), against the running services.

Auditor tokens (of one province, or national) read every read route of their reach and write
nothing, on every route the services have: the routes are walked from the apps themselves,
so a route added later is covered without editing this file (or fails it, if it reads a
record this file cannot name). Every auditor read and every read of a restricted record (a
complaint concerning a child) leaves an entry in the access log of the tenant read — an
event of that tenant's log — which auditors, and only they, read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from uuid import uuid4

import asyncpg
import httpx
import pytest
from litestar.routes import HTTPRoute

from services.bootstrap import SERVICES, build_app
from shared.auth import Role
from shared.settings import Settings
from tests.helpers import auth, eventually

TENANT = "35"  # Jawa Timur
OTHER = "34"
PDM = "3578"  # Kota Surabaya
UNIT = "3573"  # Kota Malang
SAFE = {"GET", "HEAD", "OPTIONS"}

_WIRING_ONLY = Settings(database_url="postgresql://unused/unused", nats_url="nats://unused:1")


def _routes() -> list[tuple[str, str, str]]:
    """(service, method, path template) of every route of every service's API."""
    return sorted(
        (service, method, route.path_format)
        for service in SERVICES
        for route in build_app(service, _WIRING_ONLY).routes
        if isinstance(route, HTTPRoute)
        for method in route.methods
        if method != "OPTIONS"
    )


ROUTES = _routes()
TENANT_READS = [
    (s, p) for s, m, p in ROUTES if m == "GET" and p.startswith("/v1/tenants/{tenant}/")
]
WRITES = [(s, m, p) for s, m, p in ROUTES if m not in SAFE]


@dataclass(frozen=True)
class World:
    urls: dict[str, str]
    # Path parameter name -> a record of tenant 35 it can name.
    ids: dict[str, str]
    child_complaint: str
    plain_complaint: str

    def url(self, service: str, path: str, tenant: str = TENANT) -> str:
        return f"{self.urls[service]}/v1/tenants/{tenant}{path}"

    def concrete(self, template: str, tenant: str = TENANT) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "tenant":
                return tenant
            # A route reading a kind of record this file cannot name fails here: add it.
            assert name in self.ids, f"no {name} to read on {template}"
            return self.ids[name]

        return re.sub(r"\{(\w+)\}", fill, template)


async def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    record_id: str = response.json()["id"]
    return record_id


@pytest.fixture(scope="module")
async def world(services: dict[str, str], token: Any) -> World:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-35"))
    base = {s: f"{u}/v1/tenants/{TENANT}" for s, u in services.items()}
    async with httpx.AsyncClient(timeout=15, headers=admin) as http:
        institution = await _created(
            await http.post(
                f"{base['registry']}/institutions",
                json={"name": "LKSA Muhammadiyah Wiyung", "kind": "lksa", "pdm": PDM},
            )
        )
        # A PDM opened as a unit and a policy of its council, proposed by another officer.
        pdm_unit = await http.post(
            f"{base['registry']}/units",
            json={"kind": "pdm", "code": UNIT, "name": "PDM Kota Malang"},
        )
        assert pdm_unit.status_code in (201, 409), pdm_unit.text  # 409: the demo opened it

        async def unit_listed() -> str | None:
            r = await http.get(f"{base['registry']}/units", params={"code": UNIT, "kind": "pdm"})
            return next((row["id"] for row in r.json() if row["code"] == UNIT), None)

        unit = await eventually(unit_listed)
        policy = await _created(
            await http.post(
                f"{base['registry']}/policies",
                json={
                    "level": "city",
                    "rule": "MPKS rule 268/1.7/A/2023",
                    "title": "Standar layanan AUMSos Kota Surabaya",
                    "summary": "Standar minimum layanan bagi semua AUMSos di Kota Surabaya.",
                    "unit_kind": "pdm",
                    "unit": UNIT,
                },
                headers=auth(token(TENANT, Role.WILAYAH_ADMIN, sub="proposer-35")),
            )
        )
        accreditation = await _created(
            await http.post(
                f"{base['registry']}/institutions/{institution}/accreditation",
                json={
                    "grade": "B",
                    "scores": dict.fromkeys(
                        (
                            "programme",
                            "human_resources",
                            "management",
                            "facilities",
                            "service_results",
                        ),
                        80,
                    ),
                    "decided_on": "2026-01-05",
                    "regulation": "Permensos 8/2025",
                    "certificate_number": f"{institution}/BAN-PS/2026",
                },
            )
        )
        licence = await _created(
            await http.post(
                f"{base['registry']}/institutions/{institution}/licences",
                json={
                    "kind": "operating",
                    "number": "460/1/2024",
                    "issuer": "Dinas Sosial Kota Surabaya",
                    "issued_on": "2024-05-02",
                },
            )
        )
        appointed = await http.post(
            f"{base['registry']}/institutions/{institution}/officers",
            json={
                "role": "secretary",
                "full_name": "Ahmad Fauzi",
                "nik": "3578010101800001",
                "term_start": "2025-01-01",
                "term_end": "2029-12-31",
                "reason": "SK PDM Surabaya No. 7/2026",
            },
        )
        assert appointed.status_code == 200, appointed.text
        officers = await http.get(
            f"{base['registry']}/institutions/{institution}/officers",
            headers={"Mpks-Min-Position": appointed.headers["Mpks-Position"]},
        )
        officer = officers.json()[0]["id"]
        worker = await _created(
            await http.post(
                f"{base['hr']}/workers",
                json={"full_name": "Siti Aminah", "birth_date": "1988-03-01", "pdm": PDM},
            )
        )
        child = await _created(
            await http.post(
                f"{base['cases']}/complaints",
                json={
                    "channel": "phone",
                    "summary": "Dugaan kekerasan terhadap anak asuh.",
                    "concerns_child": True,
                },
            )
        )
        plain = await _created(
            await http.post(
                f"{base['cases']}/complaints",
                json={"channel": "phone", "summary": "Jadwal kunjungan dibatalkan."},
            )
        )

        async def listed() -> bool:
            r = await http.get(f"{base['cases']}/complaints", params={"limit": 500})
            return {child, plain} <= {row["id"] for row in r.json()}

        await eventually(listed)
    return World(
        services,
        {
            "institution_id": institution,
            "unit_id": unit,
            "accreditation_id": accreditation,
            "licence_id": licence,
            "officer_id": officer,
            "policy_id": policy,
            "worker_id": worker,
            "complaint_id": child,
            # A data subject (shared.personal): the worker is the subject of its name.
            "subject": worker,
        },
        child,
        plain,
    )


async def _head(http: httpx.AsyncClient, world: World, service: str, token: Any) -> int:
    # Read by an admin: an auditor's read would itself be recorded.
    r = await http.get(
        world.url(service, "/events"),
        params={"after": 0, "limit": 1},
        headers=auth(token(TENANT, Role.WILAYAH_ADMIN)),
    )
    assert r.status_code == 200, r.text
    head: int = r.json()["head"]
    return head


async def _entries(
    http: httpx.AsyncClient, world: World, service: str, token: Any, **params: str
) -> list[dict[str, Any]]:
    r = await http.get(
        world.url(service, "/access-log"),
        params={"limit": 1000, **params},
        headers=auth(token(TENANT, Role.AUDITOR, sub="log-reader")),
    )
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()
    return entries


def _with_reason(headers: dict[str, str], reason: bytes) -> list[tuple[bytes, bytes]]:
    """`X-Access-Reason` as raw bytes (UTF-8, or not UTF-8 at all)."""
    return [(k.encode(), v.encode()) for k, v in headers.items()] + [(b"X-Access-Reason", reason)]


# --- reading and writing ---------------------------------------------------------------------


def test_the_walk_finds_the_routes() -> None:
    # Every service's reads, history and access log, and the commands of all three.
    assert {s for s, _ in TENANT_READS} == set(SERVICES)
    assert {s for s, _, _ in WRITES} == set(SERVICES)
    assert {s for s, p in TENANT_READS if p.endswith("/access-log")} == set(SERVICES)


async def test_auditors_read_every_read_route_of_their_reach_and_no_other(
    world: World, token: Any
) -> None:
    provincial = auth(token(TENANT, Role.AUDITOR, sub="auditor-35"))
    national = auth(token("national", Role.AUDITOR, sub="auditor-pp"))
    elsewhere = auth(token(OTHER, Role.AUDITOR, sub="auditor-34"))
    async with httpx.AsyncClient(timeout=15) as http:
        for service, template in TENANT_READS:
            url = world.urls[service] + _concrete(world, service, template)
            for who, headers in (("provincial", provincial), ("national", national)):
                r = await http.get(url, headers=headers)
                assert r.status_code == 200, (who, service, template, r.text)
            r = await http.get(url, headers=elsewhere)
            assert r.status_code == 403, (service, template, r.text)
        # Across tenants: the national auditor only; the catalogue: any auditor.
        for service in SERVICES:
            heads = f"{world.urls[service]}/v1/events/heads"
            assert (await http.get(heads, headers=national)).status_code == 200
            assert (await http.get(heads, headers=provincial)).status_code == 403
            catalogue = f"{world.urls[service]}/v1/catalogue/events"
            for headers in (provincial, national):
                assert (await http.get(catalogue, headers=headers)).status_code == 200

        # Each of those reads of province 35 is in the access log of the service that
        # served it, in 35's log: the national auditor's too.
        for service in SERVICES:
            # Reading the access log itself shows no record: not recorded (below).
            routes = {p for s, p in TENANT_READS if s == service and "access-log" not in p}
            for sub, token_tenant in (("auditor-35", TENANT), ("auditor-pp", "national")):
                entries = await eventually(
                    lambda s=service, a=sub, r=routes: _entries_on(http, world, s, token, a, r)
                )
                assert {e["token_tenant"] for e in entries} == {token_tenant}
                # Once per read; the export three times: asked of each service, it reads
                # the others' logs through their own export, with the auditor's token.
                assert Counter(e["route"] for e in entries) == {
                    route: len(SERVICES) if route.endswith("/export") else 1 for route in routes
                }, entries
        # The other province's auditor was refused: it read nothing, nothing is recorded.
        for service in SERVICES:
            assert await _entries(http, world, service, token, actor="auditor-34") == []


async def _entries_on(
    http: httpx.AsyncClient, world: World, service: str, token: Any, sub: str, routes: set[str]
) -> list[dict[str, Any]] | None:
    """`sub`'s entries in `service`'s log, once they cover `routes`."""
    found = await _entries(http, world, service, token, actor=sub)
    return found if {e["route"] for e in found} == routes else None


def _concrete(world: World, service: str, template: str) -> str:
    """A history route names its record `record_id`: the kind its collection holds."""
    if template.endswith("/{record_id}/history"):
        collection = template.removesuffix("/{record_id}/history").rsplit("/", 1)[-1]
        # institutions -> institution_id, policies -> policy_id
        kind = re.sub("ies$", "y", collection).removesuffix("s")
        template = template.replace("{record_id}", "{" + kind + "_id}")
    return world.concrete(template)


@pytest.mark.parametrize(("service", "method", "template"), WRITES)
async def test_every_write_route_refuses_auditors(
    world: World, token: Any, service: str, method: str, template: str
) -> None:
    auditors = [
        token(TENANT, Role.AUDITOR),
        token("national", Role.AUDITOR),
        token("national", Role.AUDITOR, Role.SERVICE),
    ]
    url = world.urls[service] + _concrete(world, service, template)
    async with httpx.AsyncClient(timeout=15) as http:
        before = await _head(http, world, service, token)
        for auditor in auditors:
            # A body that would pass validation does not matter: the role is refused first.
            r = await http.request(
                method, url, json={}, headers=auth(auditor, **{"Accept-Language": "en"})
            )
            assert r.status_code == 403, (method, template, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            # Refused by the one guard every route has, before the route's own.
            assert "read and never write" in r.json()["detail"], r.text
        assert await _head(http, world, service, token) == before


async def test_an_auditor_with_a_writing_role_writes_with_that_role_only(
    world: World, token: Any
) -> None:
    # Auditing adds nothing to what the operator's own role may write: its PDM only.
    operator = auth(token(TENANT, Role.PDM_OPERATOR, Role.AUDITOR, sub="op-3578", pdm=PDM))
    async with httpx.AsyncClient(timeout=15, headers=operator) as http:
        r = await http.post(
            world.url("registry", "/institutions"),
            json={"name": "LKSA Di Luar PDM", "kind": "lksa", "pdm": "3501"},
        )
        assert r.status_code == 403, r.text
        r = await http.post(
            world.url("registry", "/institutions"),
            json={"name": "LKSA Di Dalam PDM", "kind": "lksa", "pdm": PDM},
        )
        assert r.status_code == 201, r.text


# --- the access log --------------------------------------------------------------------------


async def test_an_auditors_read_is_recorded_with_who_what_and_why(world: World, token: Any) -> None:
    institution = world.ids["institution_id"]
    reason = "Pemeriksaan tahunan — surat tugas 12/2026"
    sub = f"auditor-{uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(
            world.url("registry", f"/institutions/{institution}"),
            headers=_with_reason(auth(token(TENANT, Role.AUDITOR, sub=sub)), reason.encode()),
        )
        assert r.status_code == 200, r.text
        r = await http.get(
            world.url("registry", "/institutions"),
            params={"pdm": PDM, "limit": 5},
            headers=auth(token("national", Role.AUDITOR, sub=sub)),
        )
        assert r.status_code == 200, r.text

        async def two() -> list[dict[str, Any]] | None:
            found = await _entries(http, world, "registry", token, actor=sub)
            return found if len(found) == 2 else None

        one, listed = await eventually(two)
        feed = await http.get(
            world.url("registry", "/events"),
            params={"after": one["position"] - 1, "limit": 1},
            headers=auth(token(TENANT, Role.WILAYAH_ADMIN)),
        )
    assert one["actor"] == sub
    assert one["reason"] == reason
    assert one["resource"] == "institutions"
    assert one["record_ids"] == [institution]
    assert one["route"] == "/v1/tenants/{tenant}/institutions/{institution_id}"
    assert (one["token_tenant"], one["roles"], one["restricted_shown"]) == (
        TENANT,
        ["auditor"],
        False,
    )
    # A national auditor's read of province 35 is in 35's log, with its query.
    assert listed["token_tenant"] == "national"
    assert parse_qs(listed["query"]) == {"pdm": [PDM], "limit": ["5"]}
    assert listed["reason"] is None
    assert listed["position"] > one["position"]
    # The entry is an event of the tenant's log: in its feed (and under its hash chain).
    (event,) = feed.json()["events"]
    assert (event["aggregate"], event["event"]) == ("Access", "Recorded")
    assert event["aggregate_id"] == one["id"]
    assert (event["meta"]["actor"], event["meta"]["reason"]) == (sub, reason)
    assert event["data"]["record_ids"] == [institution]


async def test_a_restricted_record_read_by_anyone_is_recorded(world: World, token: Any) -> None:
    sub = f"case-worker-{uuid4().hex[:8]}"
    case_worker = auth(
        token(TENANT, Role.CASE_WORKER, sub=sub), **{"X-Access-Reason": "tindak lanjut"}
    )
    child = world.child_complaint
    async with httpx.AsyncClient(timeout=15, headers=case_worker) as http:
        r = await http.get(world.url("cases", f"/complaints/{child}"))
        assert r.status_code == 200, r.text
        assert r.json()["concerns_child"] is True
        # The list shows it too, and its history shows what it shows.
        r = await http.get(world.url("cases", "/complaints"), params={"limit": 500})
        assert child in {row["id"] for row in r.json()}
        r = await http.get(world.url("cases", f"/complaints/{child}/history"))
        assert r.status_code == 200, r.text
        # And as it was at a date.
        now = datetime.now(UTC).isoformat()
        r = await http.get(world.url("cases", f"/complaints/{child}"), params={"as_of": now})
        assert r.status_code == 200, r.text
        assert r.json()["state"]["concerns_child"] is True

        async def four() -> list[dict[str, Any]] | None:
            found = await _entries(http, world, "cases", token, actor=sub)
            return found if len(found) == 4 else None

        entries = await eventually(four)
        by_record = await _entries(http, world, "cases", token, record_id=child, actor=sub)
    assert [e["resource"] for e in entries] == ["complaints"] * 4
    assert all(e["restricted_shown"] and child in e["record_ids"] for e in entries)
    assert [e["route"] for e in entries] == [
        "/v1/tenants/{tenant}/complaints/{complaint_id}",
        "/v1/tenants/{tenant}/complaints",
        "/v1/tenants/{tenant}/complaints/{record_id}/history",
        "/v1/tenants/{tenant}/complaints/{complaint_id}",
    ]
    # The list's entry names the restricted records it showed, not every record.
    assert world.plain_complaint not in entries[1]["record_ids"]
    assert {e["reason"] for e in entries} == {"tindak lanjut"}
    assert entries[0]["roles"] == ["case_worker"]
    assert by_record == entries


async def test_ordinary_reads_leave_no_trace(world: World, token: Any) -> None:
    case_worker = auth(token(TENANT, Role.CASE_WORKER))
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    async with httpx.AsyncClient(timeout=15) as http:
        heads = {s: await _head(http, world, s, token) for s in SERVICES}
        r = await http.get(
            world.url("cases", f"/complaints/{world.plain_complaint}"), headers=case_worker
        )
        assert r.status_code == 200, r.text
        for service, path in (
            ("registry", "/institutions"),
            ("hr", "/workers"),
            ("registry", f"/institutions/{world.ids['institution_id']}/history"),
        ):
            assert (await http.get(world.url(service, path), headers=admin)).status_code == 200
        # A refused read shows nothing, so it records nothing, even a restricted record's.
        outsider = auth(token(TENANT, Role.PDM_OPERATOR, pdm="3501"))
        r = await http.get(
            world.url("cases", f"/complaints/{world.child_complaint}"), headers=outsider
        )
        assert r.status_code == 404, r.text
        assert {s: await _head(http, world, s, token) for s in SERVICES} == heads


async def test_the_access_log_is_for_auditors_only(world: World, token: Any) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        for reader in (
            token(TENANT, Role.PDM_OPERATOR, pdm=PDM),
            token(TENANT, Role.WILAYAH_ADMIN),
            token(TENANT, Role.CASE_WORKER),
            token("national", Role.NATIONAL_ADMIN),
            token("national", Role.SERVICE),
        ):
            r = await http.get(world.url("cases", "/access-log"), headers=auth(reader))
            assert r.status_code == 403, r.text
        r = await http.get(
            world.url("cases", "/access-log"), headers=auth(token(OTHER, Role.AUDITOR))
        )
        assert r.status_code == 403, r.text
        r = await http.get(
            world.url("cases", "/access-log"), headers=auth(token("national", Role.AUDITOR))
        )
        assert r.status_code == 200, r.text
        # Bad filters are the caller's fault, named: not RFC 3339, or no such date.
        for name, value in (
            ("since", "yesterday"),
            ("until", "1767225600"),
            ("since", "2026-02-30T10:00:00Z"),
            ("until", "2026-01-01T10:00:00"),
        ):
            r = await http.get(
                world.url("cases", "/access-log"),
                params={name: value},
                headers=auth(token(TENANT, Role.AUDITOR)),
            )
            assert r.status_code == 422, r.text
            assert [e["field"] for e in r.json()["errors"]] == [name], r.text


async def test_paging_the_feed_or_the_log_to_the_end_ends(world: World, token: Any) -> None:
    """An auditor's page of events is recorded, as an event the next page shows: a page
    showing only such entries (or nothing) is not, so paging reaches the end."""
    sub = f"auditor-{uuid4().hex[:8]}"
    auditor = auth(token(TENANT, Role.AUDITOR, sub=sub))
    async with httpx.AsyncClient(timeout=15, headers=auditor) as http:
        after = 0
        shown: list[list[dict[str, Any]]] = []
        while len(shown) < 1000:
            r = await http.get(world.url("hr", "/events"), params={"after": after, "limit": 2})
            assert r.status_code == 200, r.text
            events = r.json()["events"]
            if not events:
                break
            shown.append(events)
            after = events[-1]["position"]
        assert len(shown) < 1000
        # Each page that showed an event other than an access entry, and no other.
        data_pages = sum(1 for page in shown if any(e["aggregate"] != "Access" for e in page))

        async def logged() -> list[dict[str, Any]] | None:
            found = await _entries(http, world, "hr", token, actor=sub)
            return found if len(found) >= data_pages else None

        entries = await eventually(logged)
        # Reading the log is not recorded either, nor the pages of nothing but entries.
        r = await http.get(world.url("hr", "/access-log"), params={"actor": sub})
        assert r.json() == entries
    assert len(entries) == data_pages
    assert {e["resource"] for e in entries} == {"events"}


async def test_the_access_log_pages_and_filters_by_date(world: World, token: Any) -> None:
    sub = f"auditor-{uuid4().hex[:8]}"
    auditor = auth(token(TENANT, Role.AUDITOR, sub=sub))
    async with httpx.AsyncClient(timeout=15) as http:
        for _ in range(3):
            assert (await http.get(world.url("hr", "/workers"), headers=auditor)).status_code == 200

        async def three() -> list[dict[str, Any]] | None:
            found = await _entries(http, world, "hr", token, actor=sub)
            return found if len(found) == 3 else None

        first, second, third = await eventually(three)
        page = await _entries(
            http, world, "hr", token, actor=sub, after=str(first["position"]), limit="1"
        )
        assert page == [second]
        later = await _entries(http, world, "hr", token, actor=sub, since=second["at"])
        assert later == [second, third]
        earlier = await _entries(http, world, "hr", token, actor=sub, until=second["at"])
        assert earlier == [first]


async def test_a_reason_that_is_not_one_line_of_text_is_refused(world: World, token: Any) -> None:
    auditor = auth(token(TENANT, Role.AUDITOR))
    async with httpx.AsyncClient(timeout=15) as http:
        before = await _head(http, world, "registry", token)
        # Too long, empty, not one line of text (a tab is a control character, and so is
        # U+0085 in UTF-8).
        for reason in (b"x" * 501, b"", b"baris\tdua", "baris\x85dua".encode()):
            r = await http.get(
                world.url("registry", "/institutions"), headers=_with_reason(auditor, reason)
            )
            assert r.status_code == 422, (reason, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["X-Access-Reason"]
        assert await _head(http, world, "registry", token) == before


async def test_a_read_that_cannot_be_recorded_is_not_answered(
    world: World, token: Any, owner: asyncpg.Connection[Any]
) -> None:
    """Fail closed: while the tenant's log cannot take the entry (here: locked past the
    lock timeout), a restricted record and an auditor's read answer 503, without the data;
    ordinary reads go on."""
    case_worker = auth(token(TENANT, Role.CASE_WORKER))
    child = world.url("cases", f"/complaints/{world.child_complaint}")
    async with httpx.AsyncClient(timeout=30) as http:
        async with owner.transaction():
            await owner.execute("LOCK TABLE cases_t35.cases_events IN EXCLUSIVE MODE")
            r = await http.get(child, headers=case_worker)
            assert r.status_code == 503, r.text
            assert "Retry-After" in r.headers
            assert "kekerasan" not in r.text
            r = await http.get(
                world.url("cases", "/complaints"), headers=auth(token(TENANT, Role.AUDITOR))
            )
            assert r.status_code == 503, r.text
            r = await http.get(
                world.url("cases", f"/complaints/{world.plain_complaint}"), headers=case_worker
            )
            assert r.status_code == 200, r.text
        r = await http.get(child, headers=case_worker)
        assert r.status_code == 200, r.text
