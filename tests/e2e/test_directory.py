"""The institutions directory over HTTP (issue 10): text search by name and address that
ignores case and accents, the filters and `as_of`, the total for paging, downloads as CSV
and XLSX holding the rows the list holds under the caller's scope, the public directory
(no token, no personal data, cached, rate-limited) and the labels catalogue.

Tenant 16 (Sumatera Selatan) belongs to this module.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import msgspec
import pytest
import uvicorn
from openpyxl import load_workbook

from services.bootstrap import build_app
from shared.auth import Role
from shared.http.reads import MIN_POSITION_HEADER, POSITION_HEADER
from shared.settings import ProcessRole, Settings
from tests.conftest import free_port
from tests.helpers import auth

TENANT = "16"  # Sumatera Selatan
PALEMBANG = "1671"
LUBUKLINGGAU = "1674"
# 'Aisyiyah as often written, with a curly apostrophe (U+2018).
CURLY = "\u2018"
PUBLIC_FIELDS = {
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


@dataclass(frozen=True)
class Directory:
    url: str
    public: str
    admin: dict[str, str]
    ids: dict[str, str]
    renamed_at: str


@pytest.fixture(scope="module")
async def directory(services: dict[str, str], token: Any) -> Directory:
    registry = services["registry"]
    url = f"{registry}/v1/tenants/{TENANT}/institutions"
    admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-16"))
    entries = {
        "jose": ("Panti Asuhan José Rizal", "lksa", PALEMBANG, "Jl. Teuku Umar 3"),
        "aisyiyah": (
            f"Rumah Singgah {CURLY}Aisyiyah",
            "rumah_singgah",
            LUBUKLINGGAU,
            "Jl. Pemuda No. 5",
        ),
        "wiyung": ("LKSA Muhammadiyah Wiyung", "lksa", LUBUKLINGGAU, None),
        "senior": ("Muhammadiyah Senior Care Way Halim", "senior_care", PALEMBANG, None),
        "formula": ('=HYPERLINK("http://x")', "bakesos", PALEMBANG, None),
    }
    ids: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=15) as http:
        for key, (name, kind, pdm, address) in entries.items():
            body = {"name": name, "kind": kind, "pdm": pdm, "address": address}
            r = await http.post(url, json=body, headers=admin)
            assert r.status_code == 201, r.text
            ids[key] = r.json()["id"]
        renamed = await http.post(
            f"{url}/{ids['wiyung']}/rename",
            json={"name": "LKSA Muhammadiyah Gedong Air"},
            headers=admin,
        )
        history = await http.get(f"{url}/{ids['wiyung']}/history", headers=admin)
        suspended = await http.post(
            f"{url}/{ids['senior']}/suspend", json={"reason": "audit"}, headers=admin
        )
        assert suspended.status_code == 200, suspended.text
        # Every read below sees every write above.
        position = suspended.headers[POSITION_HEADER]
        caught_up = await http.get(url, headers={**admin, MIN_POSITION_HEADER: position})
        assert caught_up.status_code == 200
    assert renamed.status_code == 200
    renamed_at = history.json()["entries"][-1]["occurred_at"]
    public = f"{registry}/v1/public/tenants/{TENANT}/institutions"
    return Directory(url, public, admin, ids, renamed_at)


async def names(http: httpx.AsyncClient, d: Directory, **params: Any) -> set[str]:
    r = await http.get(d.url, params={"limit": 500, **params}, headers=d.admin)
    assert r.status_code == 200, r.text
    return {row["name"] for row in r.json()}


async def test_search_finds_by_part_of_a_name_or_address_ignoring_case_and_accents(
    directory: Directory,
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        assert await names(http, directory, q="jose") == {"Panti Asuhan José Rizal"}
        assert await names(http, directory, q="JOSÉ riz") == {"Panti Asuhan José Rizal"}
        # A straight apostrophe, or none, finds the curly one; words in any order.
        assert await names(http, directory, q="aisyiyah singgah") == {
            f"Rumah Singgah {CURLY}Aisyiyah"
        }
        assert await names(http, directory, q="'Aisyiyah") == {f"Rumah Singgah {CURLY}Aisyiyah"}
        # The address too, and part of a word.
        assert await names(http, directory, q="pemud") == {f"Rumah Singgah {CURLY}Aisyiyah"}
        # Every word must match.
        assert await names(http, directory, q="aisyiyah rizal") == set()
        # The current name, not the old one.
        assert await names(http, directory, q="gedong") == {"LKSA Muhammadiyah Gedong Air"}
        assert await names(http, directory, q="wiyung") == set()
        # LIKE's wildcards are not patterns; a search with no word finds nothing.
        assert await names(http, directory, q="%") == set()
        assert await names(http, directory, q="_ris") == set()
        too_long = await http.get(directory.url, params={"q": "x" * 101}, headers=directory.admin)
        assert too_long.status_code == 422
        assert [e["field"] for e in too_long.json()["errors"]] == ["q"]


async def test_filters_combine_with_search_paging_and_as_of(directory: Directory) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        assert await names(http, directory, kind="lksa", pdm=LUBUKLINGGAU) == {
            "LKSA Muhammadiyah Gedong Air"
        }
        assert await names(http, directory, status="suspended") == {
            "Muhammadiyah Senior Care Way Halim"
        }
        assert await names(http, directory, q="muhammadiyah", pdm=PALEMBANG) == {
            "Muhammadiyah Senior Care Way Halim"
        }
        # Before the rename, the old name is what the directory held.
        before = datetime.fromisoformat(directory.renamed_at) - timedelta(microseconds=1)
        as_of = before.isoformat()
        assert await names(http, directory, q="wiyung", as_of=as_of) == {"LKSA Muhammadiyah Wiyung"}
        assert await names(http, directory, q="gedong", as_of=as_of) == set()
        # One page, and the total the list holds for the same filters.
        page = await http.get(
            directory.url, params={"pdm": PALEMBANG, "limit": 1}, headers=directory.admin
        )
        assert len(page.json()) == 1
        assert page.headers["X-Total-Count"] == "3"
        past_end = await http.get(
            directory.url, params={"pdm": PALEMBANG, "offset": 10}, headers=directory.admin
        )
        assert (past_end.json(), past_end.headers["X-Total-Count"]) == ([], "3")


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def xlsx_rows(response: httpx.Response) -> list[dict[str, Any]]:
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


async def test_downloads_hold_the_rows_of_the_list_in_the_readers_language(
    directory: Directory,
) -> None:
    params = {"pdm": PALEMBANG}
    async with httpx.AsyncClient(timeout=15) as http:
        listed = (
            await http.get(directory.url, params={**params, "limit": 500}, headers=directory.admin)
        ).json()
        assert len(listed) == 3
        indonesian = await http.get(f"{directory.url}.csv", params=params, headers=directory.admin)
        english = await http.get(
            f"{directory.url}.xlsx",
            params=params,
            headers={**directory.admin, "Accept-Language": "en"},
        )
    assert indonesian.status_code == 200, indonesian.text
    assert indonesian.headers["content-type"].startswith("text/csv")
    assert 'filename="lembaga-16.csv"' in indonesian.headers["content-disposition"]
    from_csv = csv_rows(indonesian)
    assert [r["ID"] for r in from_csv] == [row["id"] for row in listed]
    assert [r["Nama"] for r in from_csv] == [
        f"'{row['name']}" if row["name"].startswith("=") else row["name"] for row in listed
    ]
    jose = next(r for r in from_csv if r["ID"] == directory.ids["jose"])
    assert jose["Jenis"].startswith("Lembaga Kesejahteraan Sosial Anak (LKSA)")
    assert (jose["Alamat"], jose["Status"], jose["PDM"]) == ("Jl. Teuku Umar 3", "Aktif", "1671")

    assert english.status_code == 200, english.text
    assert english.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="institutions-16.xlsx"' in english.headers["content-disposition"]
    from_xlsx = xlsx_rows(english)
    assert [(r["ID"], r["Name"]) for r in from_xlsx] == [(row["id"], row["name"]) for row in listed]
    senior = next(r for r in from_xlsx if r["ID"] == directory.ids["senior"])
    assert (senior["Type"], senior["Status"]) == (
        "Muhammadiyah Senior Care (elderly care home)",
        "Suspended",
    )
    assert datetime.fromisoformat(senior["Registered"]) == datetime.fromisoformat(
        next(row for row in listed if row["id"] == directory.ids["senior"])["registered_at"]
    )


async def test_a_pdm_operator_downloads_only_its_pdm(directory: Directory, token: Any) -> None:
    operator = auth(token(TENANT, Role.PDM_OPERATOR, sub="lubuklinggau-16", pdm=LUBUKLINGGAU))
    async with httpx.AsyncClient(timeout=15) as http:
        as_csv = await http.get(f"{directory.url}.csv", headers=operator)
        as_xlsx = await http.get(f"{directory.url}.xlsx", headers=operator)
        listed = (await http.get(directory.url, headers=operator)).json()
        other_tenant = await http.get(
            f"{directory.url.replace('/16/', '/19/')}.csv", headers=operator
        )
    expected = {directory.ids["aisyiyah"], directory.ids["wiyung"]}
    assert {row["id"] for row in listed} == expected
    assert {r["ID"] for r in csv_rows(as_csv)} == expected
    assert {r["ID"] for r in xlsx_rows(as_xlsx)} == expected
    assert other_tenant.status_code == 403


async def test_the_public_directory_needs_no_token_and_shows_no_personal_data(
    directory: Directory,
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(directory.public, params={"q": "aisyiyah"})
        assert r.status_code == 200, r.text
        [row] = r.json()
        assert set(row) == PUBLIC_FIELDS
        assert row["name"] == f"Rumah Singgah {CURLY}Aisyiyah"
        assert r.headers["X-Total-Count"] == "1"
        assert r.headers["cache-control"] == "public, max-age=60"
        etag = r.headers["etag"]

        again = await http.get(
            directory.public, params={"q": "aisyiyah"}, headers={"If-None-Match": etag}
        )
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)

        one = await http.get(f"{directory.public}/{directory.ids['jose']}")
        assert one.status_code == 200
        assert set(one.json()) == PUBLIC_FIELDS
        assert (await http.get(f"{directory.public}/{uuid4()}")).status_code == 404
        unknown = await http.get(directory.public.replace(f"/{TENANT}/", "/99/"))
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")

        # A change in the tenant is a new ETag: the copy is stale.
        renamed = await http.post(
            f"{directory.url}/{directory.ids['aisyiyah']}/rename",
            json={"name": f"Rumah Singgah {CURLY}Aisyiyah Lubuklinggau"},
            headers=directory.admin,
        )
        fresh = await http.get(
            directory.public,
            params={"q": "aisyiyah"},
            headers={"If-None-Match": etag, MIN_POSITION_HEADER: renamed.headers[POSITION_HEADER]},
        )
        assert fresh.status_code == 200
        assert fresh.headers["etag"] != etag
        assert fresh.json()[0]["name"] == f"Rumah Singgah {CURLY}Aisyiyah Lubuklinggau"


@pytest.fixture
async def limited_registry(settings: Settings) -> AsyncIterator[str]:
    """A registry API process of its own allowing 5 public requests a minute per client
    (the session's allows plenty: the fuzzer reads the public routes too)."""
    port = free_port()
    own = msgspec.structs.replace(settings, public_rate_limit=5, role=ProcessRole.API)
    server = uvicorn.Server(
        uvicorn.Config(build_app("registry", own), port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the registry did not start"
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1/public/tenants/{TENANT}/institutions"
    server.should_exit = True
    await task


async def test_the_public_directory_limits_each_client(limited_registry: str) -> None:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (its default), as it would from a proxy
    # it is told to trust: each address below is a client of its own.
    crawler = {"X-Forwarded-For": "203.0.113.7"}
    async with httpx.AsyncClient(timeout=15) as http:
        answers = [
            (await http.get(limited_registry, headers=crawler)).status_code for _ in range(5)
        ]
        refused = await http.get(limited_registry, headers=crawler)
        other = await http.get(limited_registry, headers={"X-Forwarded-For": "203.0.113.8"})
    assert answers == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "too-many-requests"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) <= 60
    assert other.status_code == 200


async def test_labels_in_both_languages_without_a_token(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(f"{services['registry']}/v1/labels")
        assert r.status_code == 200, r.text
        again = await http.get(
            f"{services['registry']}/v1/labels", headers={"If-None-Match": r.headers["etag"]}
        )
    labels = r.json()
    assert set(labels["institution_type"]) == {
        "pskm",
        "pakm",
        "lksa",
        "senior_care",
        "disability_center",
        "rumah_singgah",
        "rumah_sakinah",
        "bakesos",
    }
    assert labels["institution_type"]["bakesos"] == {
        "id": "Balai Kesejahteraan Sosial (Bakesos)",
        "en": "Social welfare hall (Bakesos)",
    }
    assert labels["institution_status"]["suspended"] == {"id": "Dibekukan", "en": "Suspended"}
    assert labels["owner"]["aisyiyah"]["id"] == "'Aisyiyah"
    assert again.status_code == 304
