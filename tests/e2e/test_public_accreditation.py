"""The public directory never shows a revoked or expired accreditation as one in force: it
shows the standing (`revoked`, `expired`) and no valid-until date, while the province's own
directory keeps that date beside the standing for its staff. Over HTTP, against the running
services; the expiry is the scheduler's.

Tenant 15 (Jambi, WIB) belongs to this module (not 62: test_process_managers feeds cases
registry events of its own there, from position 1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx

from shared.auth import Role
from shared.tenancy.provinces import local_date
from tests.helpers import auth, eventually

TENANT = "15"
KOTA_JAMBI = "1571"
SCORES = {
    "programme": 84,
    "human_resources": 80,
    "management": 82,
    "facilities": 78,
    "service_results": 81,
}


async def test_a_revoked_or_expired_accreditation_shows_no_valid_until_to_the_public(
    services: dict[str, str], token: Any
) -> None:
    base = f"{services['registry']}/v1/tenants/{TENANT}"
    public = f"{services['registry']}/v1/public/tenants/{TENANT}/institutions"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-15"))
    today = local_date(TENANT, datetime.now(UTC))
    ends_in_force = today + timedelta(days=700)
    ends_revoked = today + timedelta(days=500)
    # Its valid-until passed two days ago: the scheduler expires it at its next pass.
    ends_expired = today - timedelta(days=2)

    async with httpx.AsyncClient(timeout=20) as http:

        async def post(path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
            r = await http.post(
                f"{base}{path}", json=body, headers={**admin, "Idempotency-Key": uuid4().hex}
            )
            assert r.status_code == status, r.text
            result: dict[str, Any] = r.json()
            return result

        async def accredited(name: str, grade: str, valid_until: str) -> str:
            body = {"name": name, "kind": "lksa", "pdm": KOTA_JAMBI}
            institution = str((await post("/institutions", body, 201))["id"])
            decision = {
                "grade": grade,
                "scores": SCORES,
                "decided_on": (today - timedelta(days=400)).isoformat(),
                "valid_until": valid_until,
                "regulation": "Permensos 8/2025",
                "certificate_number": f"{uuid4().hex[:8]}/BAN-PS",
            }
            await post(f"/institutions/{institution}/accreditation", decision, 201)
            return institution

        in_force = await accredited("LKSA Kota Jambi", "A", ends_in_force.isoformat())
        revoked = await accredited("LKSA Kahayan", "B", ends_revoked.isoformat())
        expired = await accredited("LKSA Kapuas", "C", ends_expired.isoformat())
        await post(
            f"/institutions/{revoked}/accreditation/revoke",
            {"reason": "Keputusan BAN-PS: pelanggaran standar pelayanan"},
        )

        async def shown() -> dict[str, dict[str, Any]] | None:
            r = await http.get(public, params={"pdm": KOTA_JAMBI, "limit": 500})
            assert r.status_code == 200, r.text
            rows = {row["id"]: row for row in r.json()}
            grades = [rows.get(i, {}).get("grade") for i in (in_force, revoked, expired)]
            return rows if grades == ["A", "revoked", "expired"] else None

        rows = await eventually(shown, within=30)
        assert rows[in_force]["accredited_until"] == ends_in_force.isoformat()
        assert rows[revoked]["accredited_until"] is None
        assert rows[expired]["accredited_until"] is None
        # One record reads as the list shows it.
        for institution, grade in ((revoked, "revoked"), (expired, "expired")):
            one = await http.get(f"{public}/{institution}")
            assert one.status_code == 200, one.text
            assert (one.json()["grade"], one.json()["accredited_until"]) == (grade, None)

        # The province's directory keeps the decision's date beside its standing.
        mine = await http.get(f"{base}/institutions/{revoked}", headers=admin)
        assert mine.status_code == 200, mine.text
        assert (mine.json()["grade"], mine.json()["accredited_until"]) == (
            "revoked",
            ends_revoked.isoformat(),
        )

        # The API documents say what a null date means.
        schema = (await http.get(f"{services['registry']}/docs/openapi.json")).json()
        field = schema["components"]["schemas"]["PublicInstitution"]["properties"][
            "accredited_until"
        ]
        assert "null when none is" in field["description"]
