"""`GET /licences?as_of=…` with `expiring_within` or `expired`: the days count from the day
of `as_of` in the province, not from today, as the directory and the register count them.

The registry runs with a clock two years ahead: the moment the licences were recorded is,
to the service, two years past, and the licences have all ended by its today.

Tenant 19 (Kepulauan Bangka Belitung, WIB) belongs to this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import httpx
import pytest

from services.registry.application.record_licence import RecordLicence
from services.registry.domain.licence import LicenceKind
from shared.auth import Role
from shared.http.app import create_app
from shared.settings import Settings
from shared.tenancy.provinces import local_date
from tests.helpers import MovableClock, auth, register_institution_in, run_command, running

TENANT = "19"
AHEAD = timedelta(days=730)


@dataclass(frozen=True)
class Recorded:
    http: httpx.AsyncClient
    headers: dict[str, str]
    # A moment when the licences were on record.
    moment: datetime
    ids: dict[str, UUID]

    async def numbers(self, **params: Any) -> set[str]:
        r = await self.http.get(
            f"/v1/tenants/{TENANT}/licences", params=params, headers=self.headers
        )
        assert r.status_code == 200, r.text
        return {
            row["number"] for row in r.json() if UUID(row["institution_id"]) in self.ids.values()
        }


@pytest.fixture
async def recorded(settings: Settings, token: Any) -> AsyncIterator[Recorded]:
    clock = MovableClock(datetime.now(UTC) + AHEAD)
    async with running("registry", settings, clock=clock) as runtime:
        day = local_date(TENANT, datetime.now(UTC))
        ids = {
            name: await register_institution_in(runtime, TENANT, name, pdm="1971")
            for name in ("LKSA Pangkalpinang", "Panti Werdha Bangka")
        }
        for institution, kind, number, ends in (
            ("LKSA Pangkalpinang", LicenceKind.OPERATING, "IO-SOON", day + timedelta(days=10)),
            ("LKSA Pangkalpinang", LicenceKind.REGISTRATION, "TD-ENDED", day - timedelta(days=5)),
            ("Panti Werdha Bangka", LicenceKind.OPERATING, "IO-LATER", day + timedelta(days=200)),
        ):
            await run_command(
                runtime,
                TENANT,
                RecordLicence(
                    institution_id=ids[institution],
                    kind=kind,
                    number=number,
                    issuer="Dinas Sosial Provinsi Kalimantan Tengah",
                    issued_on=day - timedelta(days=1000),
                    valid_until=ends,
                ),
            )
        await runtime.projections.catch_up()
        moment = datetime.now(UTC)
        # Litestar's app is an ASGI app; httpx's annotation wants another spelling of one.
        transport = httpx.ASGITransport(app=cast(Any, create_app(runtime)))
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
            headers = auth(token(TENANT, Role.WILAYAH_ADMIN))
            yield Recorded(http, headers, moment, ids)


async def test_a_list_as_of_a_past_moment_counts_from_that_day(recorded: Recorded) -> None:
    then = recorded.moment.isoformat()
    # Then: one licence was ending within 30 days, one had ended.
    assert await recorded.numbers(as_of=then, expiring_within=30) == {"IO-SOON"}
    assert await recorded.numbers(as_of=then, expiring_within=365) == {"IO-SOON", "IO-LATER"}
    assert await recorded.numbers(as_of=then, expired="true") == {"TD-ENDED"}
    # Today, two years on, every one of them has ended.
    assert await recorded.numbers(expiring_within=30) == set()
    assert await recorded.numbers(expired="true") == {"IO-SOON", "TD-ENDED", "IO-LATER"}
