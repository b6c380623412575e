"""Organisation units, institutions placed under them, and policies, against the running
registry: each refusal is a 4xx naming its field and records nothing (the events feed is the
witness); a PDM operator stays in its PDM; nobody decides on their own proposal; a council's
inbox holds what awaits it; units as of a date."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.registry.domain.organisation_unit import UnitKind, unit_id
from shared.auth import Role
from tests.helpers import auth, eventually

TENANT = "93"  # Papua Selatan
CITY = "9301"  # Kabupaten Merauke
OTHER = "9302"  # Kabupaten Boven Digoel
RULE = "MPKS rule 268/1.7/A/2023"


class Registry:
    def __init__(self, http: httpx.AsyncClient, url: str, token: Any) -> None:
        self.http = http
        self.base = f"{url}/v1/tenants/{TENANT}"
        self.token = token
        self.admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-93"))

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        return await self.http.post(f"{self.base}{path}", json=body, headers=headers)

    async def created(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> str:
        r = await self.post(path, body, headers or self.admin)
        assert r.status_code in {200, 201}, r.text
        record_id: str = r.json()["id"]
        return record_id

    async def head(self) -> int:
        auditor = auth(self.token(TENANT, Role.AUDITOR))
        r = await self.http.get(f"{self.base}/events", params={"after": 10**18}, headers=auditor)
        assert r.status_code == 200, r.text
        head: int = r.json()["head"]
        return head

    async def refused(
        self,
        path: str,
        body: dict[str, Any],
        status: int,
        field: str | None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        before = await self.head()
        r = await self.post(path, body, headers or self.admin)
        assert r.status_code == status, r.text
        problem: dict[str, Any] = r.json()
        if field is not None:
            assert field in [e["field"] for e in problem.get("errors") or []], r.text
        assert await self.head() == before
        return problem

    async def read(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        r = await self.http.get(f"{self.base}{path}", params=params, headers=headers or self.admin)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def registry(services: dict[str, str], token: Any) -> Any:
    async with httpx.AsyncClient(timeout=15) as http:
        yield Registry(http, services["registry"], token)


def unit(kind: str, code: str, name: str) -> dict[str, str]:
    return {"kind": kind, "code": code, "name": name}


async def test_units_their_refusals_and_the_list_as_of_a_date(registry: Registry) -> None:
    pdm = await registry.created("/units", unit("pdm", CITY, "PDM Kota Bandar Lampung"))
    await registry.created("/units", unit("pdm", OTHER, "PDM Kota Metro"))
    problem = await registry.refused("/units", unit("pdm", CITY, "Lagi"), 409, "code")
    assert "already recorded" in problem["detail"]
    await registry.refused("/units", unit("pdm", "3578", "PDM Surabaya"), 422, "code")
    await registry.refused("/units", unit("pca", f"{CITY}01", "PCA Teluk Betung"), 422, "code")
    a = await registry.created("/units", unit("pcm", f"{CITY}01", "PCM Teluk Betung Barat"))
    b = await registry.created("/units", unit("pcm", f"{CITY}02", "PCM Teluk Betung Selatan"))
    await registry.created("/units", unit("pcm", f"{OTHER}01", "PCM Metro Pusat"))
    reason = "Keputusan musyawarah cabang 3/2026"
    await registry.refused(
        f"/units/{a}/merge", {"into": f"{CITY}01", "reason": reason}, 422, "into"
    )
    await registry.refused(
        f"/units/{a}/merge", {"into": f"{OTHER}01", "reason": reason}, 422, "into"
    )

    before_merge = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await registry.created(f"/units/{a}/merge", {"into": f"{CITY}02", "reason": reason})
    await registry.refused(f"/units/{a}/rename", {"name": "PCM Baru"}, 422, "status")
    await registry.refused(
        f"/units/{b}/merge", {"into": f"{CITY}01", "reason": reason}, 422, "into"
    )

    async def merged_listed() -> Any:
        rows = await registry.read("/units", parent=CITY)
        return rows if any(r["status"] == "merged" for r in rows) else None

    rows = await eventually(merged_listed)
    assert [(r["code"], r["status"], r["merged_into"]) for r in rows] == [
        (f"{CITY}01", "merged", f"{CITY}02"),
        (f"{CITY}02", "open", None),
    ]
    then = await registry.read("/units", parent=CITY, as_of=before_merge.isoformat())
    assert [(r["code"], r["status"]) for r in then] == [
        (f"{CITY}01", "open"),
        (f"{CITY}02", "open"),
    ]
    one = await registry.read(f"/units/{pdm}")
    assert (one["kind"], one["code"], one["parent"]) == ("pdm", CITY, None)
    assert [r["code"] for r in await registry.read("/units", kind="pdm")] == [CITY, OTHER]

    # A PDM operator: the branches of its own PDM only, and reads only its PDM's units.
    operator = auth(registry.token(TENANT, Role.PDM_OPERATOR, sub="op-9301", pdm=CITY))
    await registry.created("/units", unit("pcm", f"{CITY}03", "PCM Panjang"), operator)
    await registry.refused(
        "/units", unit("pcm", f"{OTHER}02", "PCM Metro Barat"), 403, None, operator
    )
    await registry.refused(f"/units/{pdm}/close", {"reason": reason}, 403, None, operator)
    mine = await registry.read("/units", operator)
    assert {r["pdm"] for r in mine} == {CITY}


async def test_institutions_sit_under_open_branches_of_their_pdm(registry: Registry) -> None:
    metro = await registry.read("/units", code=OTHER, kind="pdm")
    assert metro, "the units test opened PDM Kota Metro"
    lksa = {"name": "LKSA Muhammadiyah Metro", "kind": "lksa", "pdm": OTHER}
    await registry.refused("/institutions", lksa | {"unit": f"{CITY}02"}, 422, "unit")
    await registry.refused("/institutions", lksa | {"unit": f"{OTHER}09"}, 422, "unit")
    home = await registry.created("/institutions", lksa | {"unit": f"{OTHER}01"})
    reason = "Keputusan PDM Kota Metro 4/2026"
    await registry.created(f"/units/{metro[0]['id']}/close", {"reason": reason})
    await registry.refused("/institutions", lksa, 422, "pdm")
    await registry.refused(
        f"/institutions/{home}/move", {"unit": None, "reason": reason}, 422, "pdm"
    )

    async def placed() -> Any:
        r = await registry.http.get(f"{registry.base}/institutions/{home}", headers=registry.admin)
        return r.json() if r.status_code == 200 else None

    assert (await eventually(placed))["unit"] == f"{OTHER}01"


def proposal(**fields: Any) -> dict[str, Any]:
    return {
        "level": "institution",
        "rule": RULE,
        "title": "Kebijakan perlindungan anak",
        "summary": "Prosedur keselamatan anak.",
    } | fields


async def test_policies_decided_by_others_and_the_councils_inbox(registry: Registry) -> None:
    home = await registry.created(
        "/institutions", {"name": "LKSA Muhammadiyah Tanjung Karang", "kind": "lksa", "pdm": CITY}
    )
    staff = auth(registry.token(TENANT, Role.INSTITUTION_STAFF, sub="kepala-93", institution=home))
    operator = auth(registry.token(TENANT, Role.PDM_OPERATOR, sub="op-9301", pdm=CITY))
    stranger = auth(registry.token(TENANT, Role.PDM_OPERATOR, sub="op-9302", pdm=OTHER))
    proposed = await registry.created("/policies", proposal(institution_id=home), staff)
    await registry.refused(
        "/policies", proposal(institution_id=home, level="branch"), 422, "level", staff
    )
    await registry.refused(
        "/policies", proposal(level="city", unit_kind="pdm", unit=CITY), 403, None, staff
    )
    # Staff never decide; the proposer never decides; another PDM never decides.
    await registry.refused(
        f"/policies/{proposed}/approve", {"remarks": "Sesuai."}, 403, None, staff
    )
    self_approver = auth(registry.token(TENANT, Role.PDM_OPERATOR, sub="kepala-93", pdm=CITY))
    await registry.refused(
        f"/policies/{proposed}/approve", {"remarks": "Sesuai."}, 422, "proposed_by", self_approver
    )
    await registry.refused(
        f"/policies/{proposed}/reject", {"remarks": "tidak"}, 422, "proposed_by", self_approver
    )
    await registry.refused(
        f"/policies/{proposed}/approve", {"remarks": "Sesuai."}, 403, None, stranger
    )

    city_policy = await registry.created(
        "/policies", proposal(level="city", unit_kind="pcm", unit=f"{CITY}02"), operator
    )

    async def inbox_of(kind: UnitKind, code: str, reader: dict[str, str]) -> list[str]:
        rows = await registry.read(f"/units/{unit_id(kind, code)}/inbox", reader)
        return [r["id"] for r in rows]

    async def inbox_holds_both() -> Any:
        ids = await inbox_of(UnitKind.PDM, CITY, operator)
        return ids if ids == [proposed, city_policy] else None

    await eventually(inbox_holds_both)
    assert await inbox_of(UnitKind.PCM, f"{CITY}02", operator) == []
    # Another PDM's operator: that council and its inbox are not there for it.
    r = await registry.http.get(
        f"{registry.base}/units/{unit_id(UnitKind.PDM, CITY)}/inbox", headers=stranger
    )
    assert r.status_code == 404, r.text

    await registry.created(
        f"/policies/{proposed}/request-revision", {"remarks": "Lengkapi."}, operator
    )
    revised = {"rule": RULE, "title": "Kebijakan perlindungan anak (revisi)", "summary": "Lengkap."}
    await registry.created(f"/policies/{proposed}/revise", revised, staff)
    await registry.created(f"/policies/{proposed}/approve", {"remarks": "Sesuai."}, operator)
    newer = await registry.created(
        "/policies", proposal(institution_id=home, supersedes=proposed), staff
    )
    await registry.created(f"/policies/{newer}/approve", {"remarks": "Sesuai."}, registry.admin)

    async def superseded() -> Any:
        r = await registry.read(f"/policies/{proposed}")
        return r if r["status"] == "superseded" else None

    old = await eventually(superseded)
    assert (old["superseded_by"], old["decided_by"], old["proposed_by"]) == (
        newer,
        "op-9301",
        "kepala-93",
    )
    assert await inbox_of(UnitKind.PDM, CITY, operator) == [city_policy]
    assert [r["id"] for r in await registry.read("/policies", staff)] == [newer, proposed]
