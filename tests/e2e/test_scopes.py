"""Scope below the tenant, against the running services: a PDM operator acts and reads only
in its PDM, institution staff only for their institution, on every route; tokens whose
claims make no sense are refused; HR refuses a PDM of another province and absurd dates.

The events feeds are the witness that a refused command recorded nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import jwt
import pytest

from services.bootstrap import SERVICES, build_app
from shared.auth import Role
from shared.settings import Settings
from tests.helpers import auth, eventually

TENANT = "33"  # Jawa Tengah
HOME = "3374"  # Kota Semarang: the operator's PDM
AWAY = "3372"  # Kota Surakarta: another PDM of the same province
PROBLEM_JSON = "application/problem+json"

_WIRING_ONLY = Settings(database_url="postgresql://unused/unused", nats_url="nats://unused:1")


def _command_routes() -> set[tuple[str, str]]:
    """(service, path template) of every command route of a tenant."""
    return {
        (name, route.path)
        for name in SERVICES
        for route in build_app(name, _WIRING_ONLY).routes
        if route.path.startswith("/v1/tenants/") and "POST" in getattr(route, "methods", ())
    }


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors") or []]


@dataclass(frozen=True)
class World:
    """Records of tenant 33, some in the operator's PDM and some in another."""

    urls: dict[str, str]
    home_institution: str
    away_institution: str
    away_licence: str
    home_worker: str
    away_worker: str
    province_worker: str
    home_complaint: str
    away_complaint: str
    general_complaint: str
    away_unit: str
    away_policy: str
    away_officer: str

    def url(self, service: str, path: str = "") -> str:
        return f"{self.urls[service]}/v1/tenants/{TENANT}{path}"


async def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    record_id: str = response.json()["id"]
    return record_id


async def _listed(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> set[str]:
    r = await http.get(url, params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return {row.get("id") or row["institution_id"] for row in r.json()}


async def _visible(http: httpx.AsyncClient, url: str, headers: dict[str, str], *ids: str) -> None:
    """Read models are eventual: wait until every id is listed."""

    async def all_there() -> bool:
        return set(ids) <= await _listed(http, url, headers)

    await eventually(all_there)


@pytest.fixture(scope="module")
async def world(services: dict[str, str], token: Any) -> World:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-33"))
    hr_officer = auth(token(TENANT, Role.HR_OFFICER, sub="hr-33"))
    case_worker = auth(token(TENANT, Role.CASE_WORKER, sub="cases-33"))

    def base(service: str, path: str) -> str:
        return f"{services[service]}/v1/tenants/{TENANT}{path}"

    async with httpx.AsyncClient(timeout=15) as http:

        async def institution(name: str, pdm: str) -> str:
            body = {"name": name, "kind": "lksa", "pdm": pdm}
            return await _created(
                await http.post(base("registry", "/institutions"), json=body, headers=admin)
            )

        async def worker(name: str, pdm: str | None) -> str:
            body = {"full_name": name, "birth_date": "1985-06-01", "pdm": pdm}
            return await _created(
                await http.post(base("hr", "/workers"), json=body, headers=hr_officer)
            )

        async def complaint(institution_id: str | None) -> str:
            body = {
                "channel": "phone",
                "summary": "Keluhan tentang jadwal kunjungan keluarga.",
                "institution_id": institution_id,
            }
            return await _created(
                await http.post(base("cases", "/complaints"), json=body, headers=case_worker)
            )

        home = await institution("LKSA Muhammadiyah Semarang", HOME)
        away = await institution("LKSA Muhammadiyah Surakarta", AWAY)
        away_licence = await _created(
            await http.post(
                base("registry", f"/institutions/{away}/licences"),
                json={
                    "kind": "operating",
                    "number": "460/33/2025",
                    "issuer": "Dinas Sosial Kota Surakarta",
                    "issued_on": "2025-01-06",
                },
                headers=admin,
            )
        )
        workers = [
            await worker("Siti Semarang", HOME),
            await worker("Budi Surakarta", AWAY),
            await worker("Ani Provinsi", None),
        ]
        # A complaint may name only an institution cases has learned of (over NATS).
        await _visible(http, base("cases", "/directory/institutions"), admin, home, away)
        complaints = [await complaint(home), await complaint(away), await complaint(None)]

        await _visible(http, base("registry", "/institutions"), admin, home, away)
        await _visible(http, base("hr", "/workers"), admin, *workers)
        await _visible(http, base("cases", "/complaints"), admin, *complaints)
        away_unit = await _created(
            await http.post(
                base("registry", "/units"),
                json={"kind": "pdm", "code": AWAY, "name": "PDM Kota Surakarta"},
                headers=admin,
            )
        )
        away_policy = await _created(
            await http.post(
                base("registry", "/policies"),
                json={
                    "level": "city",
                    "rule": "MPKS rule 268/1.7/A/2023",
                    "title": "Standar layanan AUMSos Surakarta",
                    "summary": "Standar minimum layanan.",
                    "unit_kind": "pdm",
                    "unit": AWAY,
                },
                headers=admin,
            )
        )
        appointed = await http.post(
            base("registry", f"/institutions/{away}/officers"),
            json={
                "role": "secretary",
                "full_name": "Ahmad Surakarta",
                "nik": "3372010101800001",
                "term_start": "2025-01-01",
                "term_end": "2029-12-31",
                "reason": "SK PDM Surakarta No. 3/2025",
            },
            headers=admin,
        )
        assert appointed.status_code == 200, appointed.text
        officers = await http.get(
            base("registry", f"/institutions/{away}/officers"),
            headers={**admin, "Mpks-Min-Position": appointed.headers["Mpks-Position"]},
        )
        away_officer = officers.json()[0]["id"]
    records = [home, away, away_licence, *workers, *complaints, away_unit, away_policy]
    records.append(away_officer)
    return World(services, *records)


async def _heads(http: httpx.AsyncClient, world: World, token: Any) -> dict[str, int]:
    auditor = auth(token(TENANT, Role.AUDITOR))
    heads: dict[str, int] = {}
    for service in SERVICES:
        # A page past the head: the head without reading any event (an auditor's read of
        # events would itself be an event of the log: `shared.http.access`).
        r = await http.get(world.url(service, "/events"), params={"after": 10**18}, headers=auditor)
        assert r.status_code == 200, r.text
        heads[service] = r.json()["head"]
    return heads


# --- commands ------------------------------------------------------------------------------


def _outside_home(world: World) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """For every command route: a request that touches a record of the other PDM."""
    institutions = "/v1/tenants/{tenant:str}/institutions"
    one = f"{institutions}/{{institution_id:uuid}}"
    away = f"/institutions/{world.away_institution}"
    erase = "/v1/tenants/{tenant:str}/subjects/{subject:uuid}/erase"
    units = "/v1/tenants/{tenant:str}/units"
    unit = f"{units}/{{unit_id:uuid}}"
    away_unit = f"/units/{world.away_unit}"
    policies = "/v1/tenants/{tenant:str}/policies"
    policy = f"{policies}/{{policy_id:uuid}}"
    away_policy = f"/policies/{world.away_policy}"
    return {
        ("registry", institutions): (
            "/institutions",
            {"name": "LKSA Titipan", "kind": "lksa", "pdm": AWAY},
        ),
        ("registry", f"{one}/rename"): (f"{away}/rename", {"name": "LKSA Diambil Alih"}),
        ("registry", f"{one}/suspend"): (f"{away}/suspend", {"reason": "bukan wilayahnya"}),
        ("registry", f"{one}/reinstate"): (f"{away}/reinstate", {"reason": "bukan wilayahnya"}),
        ("registry", f"{one}/close"): (f"{away}/close", {"reason": "bukan wilayahnya"}),
        ("registry", f"{one}/move"): (f"{away}/move", {"unit": None, "reason": "bukan wilayahnya"}),
        ("registry", units): (
            "/units",
            {"kind": "pcm", "code": f"{AWAY}01", "name": "PCM Titipan"},
        ),
        ("registry", f"{unit}/rename"): (f"{away_unit}/rename", {"name": "PDM Diambil Alih"}),
        ("registry", f"{unit}/merge"): (
            f"{away_unit}/merge",
            {"into": HOME, "reason": "bukan wilayahnya"},
        ),
        ("registry", f"{unit}/close"): (f"{away_unit}/close", {"reason": "bukan wilayahnya"}),
        ("registry", policies): (
            "/policies",
            {
                "level": "institution",
                "rule": "MPKS rule 268/1.7/A/2023",
                "title": "Kebijakan titipan",
                "summary": "Kebijakan lembaga di PDM lain.",
                "institution_id": world.away_institution,
            },
        ),
        ("registry", f"{policy}/approve"): (f"{away_policy}/approve", {"remarks": "bukan"}),
        ("registry", f"{policy}/reject"): (f"{away_policy}/reject", {"remarks": "bukan"}),
        ("registry", f"{policy}/request-revision"): (
            f"{away_policy}/request-revision",
            {"remarks": "bukan wilayahnya"},
        ),
        ("registry", f"{policy}/revise"): (
            f"{away_policy}/revise",
            {"rule": "MPKS rule 268/1.7/A/2023", "title": "Diambil alih", "summary": "Diubah."},
        ),
        ("registry", f"{one}/accreditation"): (
            f"{away}/accreditation",
            {
                "grade": "A",
                "scores": dict.fromkeys(
                    ("programme", "human_resources", "management", "facilities", "service_results"),
                    90,
                ),
                "decided_on": "2026-01-05",
                "regulation": "Permensos 8/2025",
                "certificate_number": "1/BAN-PS/2026",
            },
        ),
        ("registry", f"{one}/accreditation/revoke"): (
            f"{away}/accreditation/revoke",
            {"reason": "bukan wilayahnya"},
        ),
        ("registry", f"{one}/licences"): (
            f"{away}/licences",
            {
                "kind": "registration",
                "number": "1",
                "issuer": "Dinas Sosial",
                "issued_on": "2025-01-06",
            },
        ),
        ("registry", "/v1/tenants/{tenant:str}/licences/{licence_id:uuid}/renew"): (
            f"/licences/{world.away_licence}/renew",
            {"number": "2", "issuer": "Dinas Sosial", "issued_on": "2026-01-06"},
        ),
        ("registry", "/v1/tenants/{tenant:str}/licences/{licence_id:uuid}/revoke"): (
            f"/licences/{world.away_licence}/revoke",
            {"reason": "bukan wilayahnya"},
        ),
        ("registry", f"{one}/profile"): (f"{away}/profile", {"capacity": 40}),
        ("registry", f"{one}/officers"): (
            f"{away}/officers",
            {
                "role": "head",
                "full_name": "Kepala Titipan",
                "nik": "3372010101800002",
                "term_start": "2025-01-01",
                "term_end": "2029-12-31",
                "reason": "bukan wilayahnya",
            },
        ),
        ("registry", f"{one}/officers/{{officer_id:uuid}}/dismiss"): (
            f"{away}/officers/{world.away_officer}/dismiss",
            {"dismissed_on": "2026-01-05", "reason": "bukan wilayahnya"},
        ),
        ("registry", erase): (
            f"/subjects/{world.away_officer}/erase",
            {"reason": "bukan wilayahnya"},
        ),
        ("hr", "/v1/tenants/{tenant:str}/workers"): (
            "/workers",
            {"full_name": "Pekerja Titipan", "birth_date": "1990-01-01", "pdm": AWAY},
        ),
        ("cases", "/v1/tenants/{tenant:str}/complaints"): (
            "/complaints",
            {
                "channel": "walk_in",
                "summary": "Pengaduan tentang lembaga di PDM lain.",
                "institution_id": world.away_institution,
            },
        ),
        # Erasure is the province administrator's alone (refused for the role).
        ("hr", erase): (f"/subjects/{world.away_worker}/erase", {"reason": "bukan wilayahnya"}),
        ("cases", erase): (f"/subjects/{world.away_worker}/erase", {"reason": "bukan wilayahnya"}),
    }


async def test_the_matrix_covers_every_command_route(world: World) -> None:
    # A command route added later must be added to the matrix below, or this fails.
    assert set(_outside_home(world)) == _command_routes()


async def test_a_pdm_operator_is_refused_on_every_command_route_outside_its_pdm(
    world: World, token: Any
) -> None:
    # Every role a PDM operator could also hold that grants no province-wide writes, so
    # only the scope (or the route's roles) can refuse.
    operator = auth(token(TENANT, Role.PDM_OPERATOR, Role.AUDITOR, sub="op-3374", pdm=HOME))
    async with httpx.AsyncClient(timeout=15) as http:
        before = await _heads(http, world, token)
        for (service, template), (path, body) in _outside_home(world).items():
            r = await http.post(world.url(service, path), json=body, headers=operator)
            refusal = problem(r, 403)
            # Refused for its scope (naming it) or, on a province-wide route, for its roles.
            assert refusal["code"] in {"out-of-scope", "forbidden"}, (template, r.text)
            if refusal["code"] == "out-of-scope":
                assert "3374" in refusal["detail"], (template, r.text)
        assert await _heads(http, world, token) == before


async def test_a_pdm_operator_acts_inside_its_pdm(world: World, token: Any) -> None:
    operator = auth(token(TENANT, Role.PDM_OPERATOR, sub="op-3374", pdm=HOME))
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            world.url("registry", "/institutions"),
            json={"name": "PSKM Semarang Baru", "kind": "pskm", "pdm": HOME},
            headers=operator,
        )
        assert r.status_code == 201, r.text
        r = await http.post(
            world.url("registry", f"/institutions/{world.home_institution}/rename"),
            json={"name": "LKSA Muhammadiyah Kota Semarang"},
            headers=operator,
        )
        assert r.status_code == 200, r.text

        # A complaint naming no institution belongs to the PDM desk that took it.
        general = await _created(
            await http.post(
                world.url("cases", "/complaints"),
                json={"channel": "walk_in", "summary": "Pengaduan umum di kantor PDM."},
                headers=operator,
            )
        )
        about_home = await _created(
            await http.post(
                world.url("cases", "/complaints"),
                json={
                    "channel": "walk_in",
                    "summary": "Pengaduan tentang LKSA di Semarang.",
                    "institution_id": world.home_institution,
                },
                headers=operator,
            )
        )
        await _visible(http, world.url("cases", "/complaints"), operator, general, about_home)
        r = await http.get(world.url("cases", f"/complaints/{general}"), headers=operator)
    assert r.json()["pdm"] == HOME
    assert r.json()["received_by"] == "op-3374"


async def test_the_write_side_decides_not_a_stale_read_model(
    world: World, token: Any, owner: asyncpg.Connection[Any]
) -> None:
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN))
    operator = auth(token(TENANT, Role.PDM_OPERATOR, sub="op-3374", pdm=HOME))
    async with httpx.AsyncClient(timeout=15) as http:
        away = await _created(
            await http.post(
                world.url("registry", "/institutions"),
                json={"name": "Bakesos Surakarta", "kind": "bakesos", "pdm": AWAY},
                headers=admin,
            )
        )
        await _visible(http, world.url("registry", "/institutions"), admin, away)
        # The read model now wrongly says the institution is in the operator's PDM.
        await owner.execute("UPDATE registry.institutions SET pdm = $1 WHERE id = $2", HOME, away)
        await _visible(http, world.url("registry", "/institutions"), operator, away)

        before = await _heads(http, world, token)
        r = await http.post(
            world.url("registry", f"/institutions/{away}/rename"),
            json={"name": "Bakesos Diambil Alih"},
            headers=operator,
        )
        assert "3374" in problem(r, 403)["detail"]
        assert await _heads(http, world, token) == before


async def test_institution_staff_receive_complaints_only_about_their_institution(
    world: World, token: Any
) -> None:
    staff = auth(
        token(TENANT, Role.INSTITUTION_STAFF, sub="staff-a", institution=world.home_institution)
    )
    url = world.url("cases", "/complaints")
    summary = "Pengaduan diterima di lembaga."
    async with httpx.AsyncClient(timeout=15) as http:
        before = await _heads(http, world, token)
        for institution_id in (world.away_institution, None):
            r = await http.post(
                url,
                json={"channel": "walk_in", "summary": summary, "institution_id": institution_id},
                headers=staff,
            )
            assert str(world.home_institution) in problem(r, 403)["detail"]
        # Not a writer of institutions at all.
        r = await http.post(
            world.url("registry", f"/institutions/{world.home_institution}/rename"),
            json={"name": "Nama Lain"},
            headers=staff,
        )
        problem(r, 403)
        assert await _heads(http, world, token) == before

        r = await http.post(
            url,
            json={
                "channel": "walk_in",
                "summary": summary,
                "institution_id": world.home_institution,
            },
            headers=staff,
        )
        assert r.status_code == 201, r.text


# --- reads ---------------------------------------------------------------------------------


async def test_a_pdm_operator_reads_only_its_pdm(world: World, token: Any) -> None:
    operator = auth(token(TENANT, Role.PDM_OPERATOR, sub="op-3374", pdm=HOME))
    async with httpx.AsyncClient(timeout=15, headers=operator) as http:
        r = await http.get(world.url("registry", "/institutions"), params={"limit": 500})
        assert r.status_code == 200, r.text
        rows = r.json()
        assert world.home_institution in {row["id"] for row in rows}
        assert {row["pdm"] for row in rows} == {HOME}
        r = await http.get(world.url("registry", "/institutions"), params={"pdm": AWAY})
        assert r.json() == []

        r = await http.get(world.url("hr", "/workers"), params={"limit": 500})
        workers = {row["id"] for row in r.json()}
        assert world.home_worker in workers
        assert not workers & {world.away_worker, world.province_worker}

        r = await http.get(world.url("cases", "/complaints"), params={"limit": 500})
        complaints = {row["id"] for row in r.json()}
        assert world.home_complaint in complaints
        assert not complaints & {world.away_complaint, world.general_complaint}

        r = await http.get(world.url("cases", "/directory/institutions"))
        directory = {row["institution_id"] for row in r.json()}
        assert world.home_institution in directory
        assert world.away_institution not in directory

        # One record outside the PDM is not found, exactly like one that does not exist.
        for service, path in (
            ("registry", f"/institutions/{world.away_institution}"),
            ("hr", f"/workers/{world.away_worker}"),
            ("hr", f"/workers/{world.province_worker}"),
            ("cases", f"/complaints/{world.away_complaint}"),
            ("cases", f"/complaints/{world.general_complaint}"),
        ):
            problem(await http.get(world.url(service, path)), 404)
        for service, path in (
            ("registry", f"/institutions/{world.home_institution}"),
            ("hr", f"/workers/{world.home_worker}"),
            ("cases", f"/complaints/{world.home_complaint}"),
        ):
            r = await http.get(world.url(service, path))
            assert r.status_code == 200, (service, path, r.text)


async def test_institution_staff_read_only_their_institution(world: World, token: Any) -> None:
    staff = auth(
        token(TENANT, Role.INSTITUTION_STAFF, sub="staff-a", institution=world.home_institution)
    )
    async with httpx.AsyncClient(timeout=15, headers=staff) as http:
        r = await http.get(world.url("registry", "/institutions"))
        assert [row["id"] for row in r.json()] == [world.home_institution]
        r = await http.get(world.url("cases", "/directory/institutions"))
        assert [row["institution_id"] for row in r.json()] == [world.home_institution]
        r = await http.get(world.url("cases", "/complaints"), params={"limit": 500})
        assert r.json(), r.text
        assert {row["institution_id"] for row in r.json()} == {world.home_institution}
        # Workers are not deployed to institutions yet: staff see none.
        r = await http.get(world.url("hr", "/workers"))
        assert r.json() == []
        problem(
            await http.get(world.url("registry", f"/institutions/{world.away_institution}")), 404
        )
        problem(await http.get(world.url("cases", f"/complaints/{world.general_complaint}")), 404)


async def test_province_wide_roles_read_everything(world: World, token: Any) -> None:
    # Holding a scoped role as well does not narrow a province-wide one.
    for reader in (
        token(TENANT, Role.AUDITOR),
        token(TENANT, Role.WILAYAH_ADMIN, Role.PDM_OPERATOR, pdm=HOME),
        token("national", Role.NATIONAL_ADMIN),
    ):
        async with httpx.AsyncClient(timeout=15, headers=auth(reader)) as http:
            institutions = await _listed(http, world.url("registry", "/institutions"), {})
            workers = await _listed(http, world.url("hr", "/workers"), {})
            complaints = await _listed(http, world.url("cases", "/complaints"), {})
        assert {world.home_institution, world.away_institution} <= institutions
        assert {world.home_worker, world.away_worker, world.province_worker} <= workers
        assert {world.home_complaint, world.away_complaint, world.general_complaint} <= complaints


# --- tokens --------------------------------------------------------------------------------


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "someone",
        "tenant": TENANT,
        "roles": ["wilayah_admin"],
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


MEANINGLESS_CLAIMS: list[tuple[str, dict[str, Any]]] = [
    ("empty sub", {"sub": ""}),
    ("blank sub", {"sub": "   "}),
    ("sub with surrounding spaces", {"sub": " admin "}),
    ("sub with a control character", {"sub": "admin\u0000"}),
    ("overlong sub", {"sub": "a" * 201}),
    ("no roles", {"roles": []}),
    ("unknown role", {"roles": ["superuser"]}),
    ("pdm_operator without pdm", {"roles": ["pdm_operator"]}),
    ("pdm of another province", {"roles": ["pdm_operator"], "pdm": "3578"}),
    ("pdm not 4 digits", {"roles": ["pdm_operator"], "pdm": "33"}),
    ("pdm not digits", {"roles": ["pdm_operator"], "pdm": "33ab"}),
    ("institution_staff without institution", {"roles": ["institution_staff"]}),
    ("institution not an id", {"roles": ["institution_staff"], "institution": "lksa-1"}),
    ("national token with a pdm", {"tenant": "national", "pdm": "3374"}),
]


@pytest.mark.parametrize(
    "overrides", [o for _, o in MEANINGLESS_CLAIMS], ids=[label for label, _ in MEANINGLESS_CLAIMS]
)
async def test_tokens_with_meaningless_claims_are_refused(
    world: World, settings: Settings, token: Any, overrides: dict[str, Any]
) -> None:
    headers = auth(jwt.encode(_claims(**overrides), settings.jwt_secret, algorithm="HS256"))
    async with httpx.AsyncClient(timeout=15) as http:
        before = await _heads(http, world, token)
        r = await http.get(world.url("registry", "/institutions"), headers=headers)
        problem(r, 401)
        r = await http.post(
            world.url("registry", "/institutions"),
            json={"name": "LKSA Tanpa Pelaku", "kind": "lksa", "pdm": HOME},
            headers=headers,
        )
        problem(r, 401)
        assert await _heads(http, world, token) == before


async def test_the_longest_accepted_sub_is_recorded_as_the_actor(
    world: World, settings: Settings, token: Any
) -> None:
    sub = "u" * 200
    headers = auth(jwt.encode(_claims(sub=sub), settings.jwt_secret, algorithm="HS256"))
    async with httpx.AsyncClient(timeout=15) as http:
        created = await _created(
            await http.post(
                world.url("registry", "/institutions"),
                json={"name": "LKSA Pelaku Panjang", "kind": "lksa", "pdm": HOME},
                headers=headers,
            )
        )
        r = await http.get(
            world.url("registry", "/events"),
            params={"after": 0, "limit": 1000},
            headers=auth(token(TENANT, Role.AUDITOR)),
        )
    mine = [e for e in r.json()["events"] if e["aggregate_id"] == created]
    assert [e["meta"]["actor"] for e in mine] == [sub]


# --- hr ------------------------------------------------------------------------------------

IMPLAUSIBLE_WORKERS: list[tuple[str, dict[str, Any], str]] = [
    ("pdm of another province", {"pdm": "3578"}, "pdm"),
    ("pdm of the national range", {"pdm": "0001"}, "pdm"),
    ("born in year 1", {"birth_date": "0001-01-01"}, "birth_date"),
    ("born in 1900", {"birth_date": "1900-01-01"}, "birth_date"),
    ("born in the future", {"birth_date": "2999-01-01"}, "birth_date"),
    ("a child", {"birth_date": f"{time.gmtime().tm_year - 10}-01-01"}, "birth_date"),
]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [(o, f) for _, o, f in IMPLAUSIBLE_WORKERS],
    ids=[label for label, _, _ in IMPLAUSIBLE_WORKERS],
)
async def test_hr_refuses_implausible_workers_naming_the_field(
    world: World, token: Any, overrides: dict[str, Any], field: str
) -> None:
    body = {"full_name": "Ahmad Dahlan", "birth_date": "1980-01-01", "pdm": HOME, **overrides}
    async with httpx.AsyncClient(timeout=15) as http:
        before = await _heads(http, world, token)
        r = await http.post(
            world.url("hr", "/workers"), json=body, headers=auth(token(TENANT, Role.HR_OFFICER))
        )
        assert fields_of(problem(r, 422)) == [field], r.text
        assert await _heads(http, world, token) == before


async def test_hr_registers_a_plausible_worker_of_its_province(world: World, token: Any) -> None:
    body = {"full_name": f"Nyai Walidah {uuid4().hex[:6]}", "birth_date": "1960-02-29"}
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            world.url("hr", "/workers"),
            json={**body, "pdm": "3301"},
            headers=auth(token(TENANT, Role.HR_OFFICER)),
        )
    assert r.status_code == 201, r.text
