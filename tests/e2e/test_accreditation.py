"""Accreditation and licences over HTTP, against the running services: each refusal is a
4xx naming the field and records nothing (the tenant's events feed is the witness); a
certificate number is taken once even by concurrent requests; the register counts per
grade in a province and, for the national council, per province and nationally; the
events reach NATS under stable, versioned names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import httpx
import msgspec
import nats
import pytest

from shared.auth import Role
from shared.settings import Settings
from tests.helpers import auth, eventually

TENANT = "18"  # Lampung
PDM = "1871"  # Kota Bandar Lampung
OTHER_PDM = "1872"  # Kota Metro
PROBLEM_JSON = "application/problem+json"
SCORES = {
    "programme": 82,
    "human_resources": 75,
    "management": 80,
    "facilities": 70,
    "service_results": 78,
}


@dataclass
class Registry:
    http: httpx.AsyncClient
    base: str
    token: Any

    @property
    def url(self) -> str:
        return f"{self.base}/v1/tenants/{TENANT}"

    def as_(self, role: Role, **claims: Any) -> dict[str, str]:
        return auth(self.token(TENANT, role, **claims), **{"Idempotency-Key": uuid4().hex})

    async def institution(self, name: str, pdm: str = PDM, kind: str = "lksa") -> str:
        r = await self.http.post(
            f"{self.url}/institutions",
            json={"name": name, "kind": kind, "pdm": pdm},
            headers=self.as_(Role.WILAYAH_ADMIN),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def decide(
        self, institution: str, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        payload = {
            "grade": "B",
            "scores": SCORES,
            "decided_on": "2026-03-12",
            "regulation": "Permensos 8/2025",
            "certificate_number": f"{uuid4().hex[:8]}/BAN-PS/2026",
        } | body
        return await self.http.post(
            f"{self.url}/institutions/{institution}/accreditation",
            json={k: v for k, v in payload.items() if v is not None},
            headers=headers or self.as_(Role.WILAYAH_ADMIN),
        )

    async def head(self) -> int:
        """The tenant log's head, read as another service does (an auditor's read would be
        recorded in the access log, moving the head)."""
        r = await self.http.get(
            f"{self.url}/events",
            params={"after": 0, "limit": 1},
            headers=auth(self.token("national", Role.SERVICE)),
        )
        assert r.status_code == 200, r.text
        return int(r.json()["head"])

    async def read(self, path: str, token: str | None = None, **params: Any) -> Any:
        r = await self.http.get(
            f"{self.url}{path}",
            params=params,
            headers=auth(token or self.token(TENANT, Role.WILAYAH_ADMIN)),
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def registry(services: dict[str, str], token: Any) -> AsyncIterator[Registry]:
    async with httpx.AsyncClient(timeout=20) as http:
        yield Registry(http, services["registry"], token)


def refused(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    fields = [e["field"] for e in response.json().get("errors") or []]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields


async def test_each_refusal_names_the_field_and_records_nothing(registry: Registry) -> None:
    lksa = await registry.institution("LKSA Tunas Harapan")
    closed = await registry.institution("LKSA Tutup")
    r = await registry.http.post(
        f"{registry.url}/institutions/{closed}/close",
        json={"reason": "Keputusan pleno PWM Lampung"},
        headers=registry.as_(Role.WILAYAH_ADMIN),
    )
    assert r.status_code == 200, r.text
    taken = await registry.decide(lksa, certificate_number="7/BAN-PS/LKS/2026")
    assert taken.status_code == 201, taken.text
    other = await registry.institution("LKSA Harapan Bangsa")
    head = await registry.head()

    refusals = [
        (await registry.decide(other, grade="D"), 422, "grade"),
        (await registry.decide(other, scores=SCORES | {"facilities": 101}), 422, "scores"),
        (await registry.decide(other, scores=SCORES | {"programme": -5}), 422, "scores"),
        (await registry.decide(other, valid_until="2026-03-01"), 422, "valid_until"),
        (await registry.decide(other, decided_on="2099-01-01"), 422, "decided_on"),
        (await registry.decide(other, certificate_number=None), 422, "certificate_number"),
        (
            await registry.decide(other, certificate_number="7/ban-ps/lks/2026"),
            422,
            "certificate_number",
        ),
        (await registry.decide(closed), 422, "institution_id"),
    ]
    for response, status, field in refusals:
        refused(response, status, field)
    # An operator of another PDM reaches neither the institution nor its accreditation.
    outsider = registry.as_(Role.PDM_OPERATOR, pdm=OTHER_PDM)
    assert (await registry.decide(other, headers=outsider)).status_code in (403, 404)
    # Auditors read and never write.
    assert (await registry.decide(other, headers=registry.as_(Role.AUDITOR))).status_code == 403
    assert await registry.head() == head
    # The operator of the institution's PDM may.
    own = await registry.decide(other, headers=registry.as_(Role.PDM_OPERATOR, pdm=PDM))
    assert own.status_code == 201, own.text


async def test_a_certificate_number_is_taken_once_under_concurrent_requests(
    registry: Registry,
) -> None:
    institutions = [await registry.institution(f"LKSA Serentak {i}") for i in range(6)]
    number = f"{uuid4().hex[:6]}/BAN-PS/2026"
    answers = await asyncio.gather(
        *(registry.decide(i, certificate_number=number) for i in institutions)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    for answer in answers:
        if answer.status_code != 201:
            # A lost race is a conflict; an attempt after the winner's commit is told why.
            assert answer.status_code in (409, 422), answer.text
            if answer.status_code == 422:
                refused(answer, 422, "certificate_number")
    register = await eventually(lambda: _granted(registry, institutions), within=10)
    assert [row["certificate_number"] for row in register] == [number]


async def _granted(registry: Registry, institutions: list[str]) -> list[dict[str, Any]]:
    rows = await registry.read("/accreditations", limit=500)
    mine = [row for row in rows if row["institution_id"] in institutions]
    return mine if mine else []


async def test_register_counts_per_grade_in_the_province_and_nationally(
    registry: Registry, token: Any
) -> None:
    before = await registry.read("/accreditations/counts", kind="lksa")
    grades = ["A", "A", "B", "C", "not_accredited"]
    for i, grade in enumerate(grades):
        lksa = await registry.institution(f"LKSA Hitung {i}")
        certificate = None if grade == "not_accredited" else f"{uuid4().hex[:8]}/BAN-PS"
        r = await registry.decide(lksa, grade=grade, certificate_number=certificate)
        assert r.status_code == 201, r.text
    await registry.institution("LKSA Belum Dinilai")
    await registry.institution("PSKM Hitung", kind="pskm")
    expected = dict(before)
    for name, added in (
        ("institutions", 6),
        ("a", 2),
        ("b", 1),
        ("c", 1),
        ("accredited", 4),
        ("not_accredited", 1),
        ("never_assessed", 1),
    ):
        expected[name] += added

    async def counted() -> dict[str, int] | None:
        counts: dict[str, int] = await registry.read("/accreditations/counts", kind="lksa")
        return counts if counts == expected else None

    await eventually(counted, within=10)
    national_token = token("national", Role.NATIONAL_ADMIN)
    r = await registry.http.get(
        f"{registry.base}/v1/national/accreditations/counts",
        params={"kind": "lksa"},
        headers=auth(national_token),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    provinces = {p["tenant"]: p["counts"] for p in body["provinces"]}
    assert len(provinces) == 38
    assert provinces[TENANT] == expected
    assert body["national"]["a"] == sum(p["a"] for p in provinces.values())
    assert body["national"]["institutions"] >= expected["institutions"]
    # National users read a province's own counts too; a province's token reads no other.
    assert (await registry.read("/accreditations/counts", national_token, kind="lksa")) == expected
    denied = await registry.http.get(
        f"{registry.base}/v1/national/accreditations/counts",
        headers=auth(token(TENANT, Role.WILAYAH_ADMIN)),
    )
    assert denied.status_code == 403


async def test_expiring_lists_and_the_register_as_of_a_date(registry: Registry) -> None:
    today = date.today()
    soon = await registry.institution("LKSA Segera Habis")
    r = await registry.decide(
        soon,
        grade="C",
        decided_on=(today - timedelta(days=700)).isoformat(),
        valid_until=(today + timedelta(days=20)).isoformat(),
    )
    assert r.status_code == 201, r.text
    later = await registry.institution("LKSA Masih Lama")
    assert (await registry.decide(later, grade="A")).status_code == 201

    async def expiring() -> list[str] | None:
        rows = await registry.read("/accreditations", expiring_within=30)
        ids = [row["institution_id"] for row in rows]
        return ids if soon in ids else None

    ids = await eventually(expiring, within=10)
    assert later not in ids
    one = await registry.read(f"/institutions/{soon}/accreditation")
    assert (one["grade"], one["status"], one["institution_name"]) == (
        "C",
        "accredited",
        "LKSA Segera Habis",
    )
    revoke = await registry.http.post(
        f"{registry.url}/institutions/{soon}/accreditation/revoke",
        json={"reason": "Keputusan BAN-PS pencabutan"},
        headers=registry.as_(Role.WILAYAH_ADMIN),
    )
    assert revoke.status_code == 200, revoke.text

    async def revoked() -> bool:
        row = await registry.read(f"/institutions/{soon}/accreditation")
        return bool(row["status"] == "revoked")

    await eventually(revoked, within=10)
    # As of before the revocation, the register still shows the grade in force.
    before = await registry.read(
        "/accreditations", as_of=r.headers["date"] and _rfc3339_now_minus(seconds=0, at=one)
    )
    assert any(row["institution_id"] == soon and row["status"] == "accredited" for row in before)


def _rfc3339_now_minus(*, seconds: int, at: dict[str, Any]) -> str:
    """The moment the register row was last updated (before the revocation)."""
    return str(at["updated_at"])


async def test_licences_expiring_and_expired(registry: Registry) -> None:
    today = date.today()
    lksa = await registry.institution("LKSA Berizin")
    for kind, issued, until in (
        ("operating", today - timedelta(days=1000), today + timedelta(days=10)),
        ("registration", today - timedelta(days=2000), today - timedelta(days=5)),
    ):
        r = await registry.http.post(
            f"{registry.url}/institutions/{lksa}/licences",
            json={
                "kind": kind,
                "number": f"460/{uuid4().hex[:5]}",
                "issuer": "Dinas Sosial Provinsi Lampung",
                "issued_on": issued.isoformat(),
                "valid_until": until.isoformat(),
            },
            headers=registry.as_(Role.WILAYAH_ADMIN),
        )
        assert r.status_code == 201, r.text
    bad = await registry.http.post(
        f"{registry.url}/institutions/{lksa}/licences",
        json={
            "kind": "operating",
            "number": "x",
            "issuer": "Dinas Sosial",
            "issued_on": today.isoformat(),
            "valid_until": today.isoformat(),
        },
        headers=registry.as_(Role.WILAYAH_ADMIN),
    )
    refused(bad, 422, "kind")

    async def listed() -> dict[str, list[str]] | None:
        expiring = await registry.read("/licences", expiring_within=30, institution_id=lksa)
        expired = await registry.read("/licences", expired="true", institution_id=lksa)
        found = {
            "expiring": [row["kind"] for row in expiring],
            "expired": [row["kind"] for row in expired],
        }
        return found if found["expiring"] and found["expired"] else None

    assert await eventually(listed, within=10) == {
        "expiring": ["operating"],
        "expired": ["registration"],
    }
    registration = next(
        row["id"]
        for row in await registry.read("/licences", institution_id=lksa)
        if row["kind"] == "registration"
    )
    renew = await registry.http.post(
        f"{registry.url}/licences/{registration}/renew",
        json={
            "number": "460/baru",
            "issuer": "Dinas Sosial Provinsi Lampung",
            "issued_on": today.isoformat(),
            "valid_until": (today + timedelta(days=1800)).isoformat(),
        },
        headers=registry.as_(Role.WILAYAH_ADMIN),
    )
    assert renew.status_code == 200, renew.text

    async def renewed() -> bool:
        expired: list[Any] = await registry.read("/licences", expired="true", institution_id=lksa)
        return not expired

    await eventually(renewed, within=10)


async def test_accreditation_events_reach_nats_with_stable_versioned_names(
    registry: Registry, settings: Settings
) -> None:
    nc = await nats.connect(settings.nats_url or "")
    try:
        js = nc.jetstream()
        subject = f"{settings.nats_prefix}.registry.{TENANT}.accreditation.*"
        sub = await js.subscribe(subject, ordered_consumer=True)
        lksa = await registry.institution("LKSA Terbit")
        assert (await registry.decide(lksa, grade="A")).status_code == 201
        revoke = await registry.http.post(
            f"{registry.url}/institutions/{lksa}/accreditation/revoke",
            json={"reason": "Keputusan BAN-PS pencabutan"},
            headers=registry.as_(Role.WILAYAH_ADMIN),
        )
        assert revoke.status_code == 200, revoke.text
        mine: list[tuple[str, str, int]] = []
        while len(mine) < 3:
            msg = await sub.next_msg(timeout=15)
            body = msgspec.json.decode(msg.data)
            if body["data"].get("institution_id") == lksa:
                mine.append((msg.subject.rsplit(".", 1)[1], body["event"], body["event_version"]))
        assert mine == [
            ("opened", "Opened", 1),
            ("granted", "Granted", 1),
            ("revoked", "Revoked", 1),
        ]
    finally:
        await nc.close()
