"""The directory joined with the accreditation register and the licences, over HTTP: filters
by branch (`unit`), accreditation (`grade`) and operating-licence state (`licence`), now
and as of earlier moments of an institution changed many times; its version stays its
own; the public directory shows the grade; the register downloads parse back; every
registry enum has its labels in both languages.

Tenant 92 (Papua Barat, WIT) belongs to this module.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from openpyxl import load_workbook

from services.registry.domain.accreditation import AccreditationStatus, Grade, Standing
from services.registry.domain.institution import InstitutionStatus, InstitutionType, Owner
from services.registry.domain.licence import LicenceKind, LicenceState, LicenceStatus
from services.registry.domain.officers import OfficerRole
from services.registry.domain.organisation_unit import UnitKind, UnitStatus
from services.registry.domain.policy import PolicyLevel, PolicyStatus
from services.registry.domain.profile import ServiceKind
from shared.auth import Role
from shared.http.reads import MIN_POSITION_HEADER, POSITION_HEADER
from tests.helpers import auth

TENANT = "92"
FAKFAK = "9201"
KAIMANA = "9202"
BRANCH_ONE = "920101"
BRANCH_TWO = "920102"
SCORES = {
    "programme": 90,
    "human_resources": 85,
    "management": 88,
    "facilities": 80,
    "service_results": 86,
}


@dataclass(frozen=True)
class Story:
    """An institution changed many times, the moments between its changes, and others."""

    base: str
    admin: dict[str, str]
    riverside: str
    ids: dict[str, str]
    # After: registration, expired licence, grade B, rename and move, grade A, renewal.
    moments: list[str]


class Client:
    def __init__(self, http: httpx.AsyncClient, base: str, headers: dict[str, str]) -> None:
        self.http = http
        self.base = base
        self.headers = headers
        self.position = "0"

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        r = await self.http.post(
            f"{self.base}{path}",
            json=body,
            headers={**self.headers, "Idempotency-Key": uuid4().hex},
        )
        assert r.status_code == status, r.text
        self.position = r.headers[POSITION_HEADER]
        result: dict[str, Any] = r.json()
        return result

    async def institution(self, name: str, unit: str | None = None) -> str:
        body = {"name": name, "kind": "lksa", "pdm": FAKFAK, "unit": unit}
        return str((await self.post("/institutions", body, 201))["id"])

    async def accredit(self, institution: str, grade: str, decided_on: date) -> None:
        body: dict[str, Any] = {
            "grade": grade,
            "scores": SCORES,
            "decided_on": decided_on.isoformat(),
            "regulation": "Permensos 8/2025",
        }
        if grade != "not_accredited":
            body["certificate_number"] = f"{uuid4().hex[:8]}/BAN-PS"
        await self.post(f"/institutions/{institution}/accreditation", body, 201)

    async def licence(self, institution: str, issued_on: date, valid_until: date) -> str:
        body = {
            "kind": "operating",
            "number": f"IO-{uuid4().hex[:6]}",
            "issuer": "Dinas Sosial Provinsi Papua Barat",
            "issued_on": issued_on.isoformat(),
            "valid_until": valid_until.isoformat(),
        }
        return str((await self.post(f"/institutions/{institution}/licences", body, 201))["id"])


def now() -> str:
    """A moment between two commands: after the answer of one, before the next is sent."""
    return datetime.now(UTC).isoformat()


@pytest.fixture(scope="module")
async def story(services: dict[str, str], token: Any) -> Story:
    base = f"{services['registry']}/v1/tenants/{TENANT}"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-92"))
    # Commands check dates against the server's clock's day (UTC): in Papua (UTC+9) the
    # province's day is ahead of it for nine hours.
    today = datetime.now(UTC).date()
    async with httpx.AsyncClient(timeout=15) as http:
        c = Client(http, base, admin)
        await c.post("/units", {"kind": "pdm", "code": FAKFAK, "name": "PDM Fakfak"}, 201)
        for code in (BRANCH_ONE, BRANCH_TWO):
            await c.post("/units", {"kind": "pcm", "code": code, "name": f"PCM {code}"}, 201)
        riverside = await c.institution("LKSA Tepian Sungai", unit=BRANCH_ONE)
        moments = [now()]
        # The licence on record ended years ago.
        licence = await c.licence(riverside, date(2019, 1, 2), date(2021, 1, 2))
        moments.append(now())
        await c.accredit(riverside, "B", today - timedelta(days=400))
        moments.append(now())
        await c.post(f"/institutions/{riverside}/rename", {"name": "LKSA Muara Sungai"})
        await c.post(
            f"/institutions/{riverside}/move",
            {"unit": BRANCH_TWO, "reason": "Keputusan PDM Fakfak 12/2026"},
        )
        moments.append(now())
        await c.accredit(riverside, "A", today)
        moments.append(now())
        # Renewed, but ending within the 90 days a renewal should be asked for.
        await c.post(
            f"/licences/{licence}/renew",
            {
                "number": "IO-RENEWED",
                "issuer": "Dinas Sosial Provinsi Papua Barat",
                "issued_on": today.isoformat(),
                "valid_until": (today + timedelta(days=30)).isoformat(),
            },
        )
        moments.append(now())
        # Others: accredited C then revoked, refused with a valid licence, never assessed.
        revoked = await c.institution("LKSA Teluk Berau")
        await c.accredit(revoked, "C", today - timedelta(days=10))
        await c.post(
            f"/institutions/{revoked}/accreditation/revoke", {"reason": "Keputusan BAN-PS"}
        )
        refused = await c.institution("Panti Werdha Kokas", unit=BRANCH_ONE)
        await c.accredit(refused, "not_accredited", today)
        await c.licence(refused, today, today + timedelta(days=800))
        plain = await c.institution("Rumah Singgah Fakfak")
        # Every read below sees every write above.
        caught_up = await http.get(
            f"{base}/institutions", headers={**admin, MIN_POSITION_HEADER: c.position}
        )
        assert caught_up.status_code == 200, caught_up.text
    ids = {"revoked": revoked, "refused": refused, "plain": plain}
    return Story(base, admin, riverside, ids, moments)


async def names(
    http: httpx.AsyncClient, s: Story, as_of: str | None = None, **filters: str
) -> set[str]:
    params: dict[str, Any] = {"limit": 500, **filters}
    if as_of is not None:
        params["as_of"] = as_of
    r = await http.get(f"{s.base}/institutions", params=params, headers=s.admin)
    assert r.status_code == 200, r.text
    assert int(r.headers["x-total-count"]) == len(r.json())
    return {row["name"] for row in r.json()}


async def test_filters_by_grade_licence_state_and_branch(story: Story) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        assert await names(http, story, grade="A") == {"LKSA Muara Sungai"}
        assert await names(http, story, grade="B") == set()
        assert await names(http, story, grade="revoked") == {"LKSA Teluk Berau"}
        assert await names(http, story, grade="not_accredited") == {"Panti Werdha Kokas"}
        assert await names(http, story, grade="never_assessed") == {"Rumah Singgah Fakfak"}
        assert await names(http, story, licence="expiring") == {"LKSA Muara Sungai"}
        assert await names(http, story, licence="valid") == {"Panti Werdha Kokas"}
        assert await names(http, story, licence="missing") == {
            "LKSA Teluk Berau",
            "Rumah Singgah Fakfak",
        }
        assert await names(http, story, licence="expired") == set()
        assert await names(http, story, unit=BRANCH_TWO) == {"LKSA Muara Sungai"}
        assert await names(http, story, unit=BRANCH_ONE) == {"Panti Werdha Kokas"}
        # Filters combine.
        assert await names(http, story, unit=BRANCH_ONE, grade="A") == set()
        # A value outside the vocabulary is a 422 naming the filter.
        for field, value in (("grade", "D"), ("licence", "soon"), ("unit", "92")):
            r = await http.get(
                f"{story.base}/institutions", params={field: value}, headers=story.admin
            )
            assert r.status_code == 422, r.text
            assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_an_institution_changed_many_times_as_of_each_moment(story: Story) -> None:
    registered, licensed, graded_b, moved, graded_a, renewed = story.moments
    expected = [
        # (moment, name, unit, grade, licence)
        (registered, "LKSA Tepian Sungai", BRANCH_ONE, "never_assessed", "missing"),
        (licensed, "LKSA Tepian Sungai", BRANCH_ONE, "never_assessed", "expired"),
        (graded_b, "LKSA Tepian Sungai", BRANCH_ONE, "B", "expired"),
        (moved, "LKSA Muara Sungai", BRANCH_TWO, "B", "expired"),
        (graded_a, "LKSA Muara Sungai", BRANCH_TWO, "A", "expired"),
        (renewed, "LKSA Muara Sungai", BRANCH_TWO, "A", "expiring"),
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        for when, name, unit, grade, licence in expected:
            r = await http.get(
                f"{story.base}/institutions",
                params={"as_of": when, "q": "sungai"},
                headers=story.admin,
            )
            assert r.status_code == 200, r.text
            [row] = r.json()
            assert (row["name"], row["unit"], row["grade"], row["licence"]) == (
                name,
                unit,
                grade,
                licence,
            ), when
            # List membership follows the same state.
            assert name in await names(http, story, as_of=when, grade=grade, unit=unit)
            assert name in await names(http, story, as_of=when, licence=licence)
            other = "A" if grade != "A" else "B"
            assert name not in await names(http, story, as_of=when, grade=other)
        # Before its registration it is in no list.
        before = datetime.fromisoformat(registered) - timedelta(seconds=5)
        assert "LKSA Tepian Sungai" not in await names(http, story, as_of=before.isoformat())
        # Now: the accreditation's events moved the row, not its version (the
        # institution's: registered, renamed, moved), which If-Match sends back.
        one = await http.get(f"{story.base}/institutions/{story.riverside}", headers=story.admin)
        assert one.status_code == 200, one.text
        assert one.headers["etag"] == '"3"'
        body = one.json()
        assert (body["grade"], body["licence"], body["version"]) == ("A", "expiring", 3)
        assert body["accredited_until"] is not None
        assert body["licence_valid_until"] is not None


async def test_the_public_directory_shows_the_grade_and_no_licence_filter(
    services: dict[str, str], story: Story
) -> None:
    public = f"{services['registry']}/v1/public/tenants/{TENANT}/institutions"
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(public, params={"grade": "A"})
        assert r.status_code == 200, r.text
        [row] = r.json()
        assert (row["name"], row["grade"]) == ("LKSA Muara Sungai", "A")
        assert date.fromisoformat(row["accredited_until"]) > date.today()
        assert set(row) == {
            "id",
            "name",
            "kind",
            "owner",
            "pdm",
            "address",
            "status",
            "grade",
            "accredited_until",
        }
        one = await http.get(f"{public}/{story.ids['revoked']}")
        assert one.json()["grade"] == "revoked"
        # The licence state changes with the day, which the public cache does not follow.
        schema = (await http.get(f"{services['registry']}/docs/openapi.json")).json()
        parameters = schema["paths"]["/v1/public/tenants/{tenant}/institutions"]["get"][
            "parameters"
        ]
        assert {"grade", "unit"} <= {p["name"] for p in parameters}
        assert "licence" not in {p["name"] for p in parameters}


async def test_the_register_downloads_parse_back_with_its_filters_and_scope(
    story: Story, token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        listed = await http.get(f"{story.base}/accreditations", headers=story.admin)
        assert listed.status_code == 200, listed.text
        r = await http.get(
            f"{story.base}/accreditations.csv", headers={**story.admin, "Accept-Language": "en"}
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
        header, body = rows[0], rows[1:]
        assert header[:3] == ["Institution ID", "Institution", "Type"]
        assert len(body) == len(listed.json()) == 3
        by_name = {row[1]: dict(zip(header, row, strict=True)) for row in body}
        assert by_name["LKSA Muara Sungai"]["Grade"] == "A (Excellent)"
        assert by_name["LKSA Muara Sungai"]["Programme"] == "90"
        assert by_name["LKSA Teluk Berau"]["Status"] == "Revoked"
        # The register's filters, and `as_of`: before grade A it held B.
        b = await http.get(
            f"{story.base}/accreditations.xlsx",
            params={"grade": "B", "as_of": story.moments[3]},
            headers={**story.admin, "Accept-Language": "id"},
        )
        assert b.status_code == 200, b.text
        sheet = load_workbook(io.BytesIO(b.content), read_only=True).active
        assert sheet is not None
        cells = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert cells[0][:2] == ["ID lembaga", "Lembaga"]
        assert [row[1] for row in cells[1:]] == ["LKSA Muara Sungai"]
        assert cells[1][5] == "B (Baik)"
        # Another PDM's operator downloads none of Fakfak's rows.
        other = auth(token(TENANT, Role.PDM_OPERATOR, pdm=KAIMANA))
        scoped = await http.get(f"{story.base}/accreditations.csv", headers=other)
        assert scoped.status_code == 200, scoped.text
        assert len(scoped.content.decode("utf-8-sig").strip().splitlines()) == 1


async def test_the_directory_download_carries_the_new_columns(story: Story) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(
            f"{story.base}/institutions.csv",
            params={"licence": "expiring"},
            headers={**story.admin, "Accept-Language": "en"},
        )
        assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    [row] = [dict(zip(rows[0], line, strict=True)) for line in rows[1:]]
    assert row["Branch"] == BRANCH_TWO
    assert row["Accreditation"] == "Accredited A"
    assert row["Operating licence"] == "Expiring within 90 days"


async def test_every_registry_enum_has_labels_in_both_languages(
    services: dict[str, str],
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(f"{services['registry']}/v1/labels")
        assert r.status_code == 200, r.text
    catalogues = r.json()
    enums = {
        "institution_type": InstitutionType,
        "institution_status": InstitutionStatus,
        "owner": Owner,
        "unit_kind": UnitKind,
        "unit_status": UnitStatus,
        "policy_level": PolicyLevel,
        "policy_status": PolicyStatus,
        "officer_role": OfficerRole,
        "service_kind": ServiceKind,
        "accreditation_grade": Grade,
        "accreditation_status": AccreditationStatus,
        "accreditation_standing": Standing,
        "licence_kind": LicenceKind,
        "licence_status": LicenceStatus,
        "licence_state": LicenceState,
    }
    for name, enum in enums.items():
        labels = catalogues[name]
        assert set(labels) == {m.value for m in enum}, name
        for value, label in labels.items():
            assert label["id"], (name, value)
            assert label["en"], (name, value)
    assert catalogues["accreditation_standing"]["never_assessed"] == {
        "id": "Belum pernah diakreditasi",
        "en": "Never assessed",
    }
