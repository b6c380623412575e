"""Reading one's own writes over HTTP: a command answers with its position in the tenant log
(`Mpks-Position`); a read sending it back (`Mpks-Min-Position`) sees the command's effect,
although read models are eventual. Past the bounded wait the answer says so (503)."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import httpx

from shared.auth import Role
from tests.helpers import auth

TENANT = "36"
PDM = "3671"
PROBLEM_JSON = "application/problem+json"


class Registry:
    def __init__(self, http: httpx.AsyncClient, base: str, token: Any) -> None:
        self.http = http
        self.url = f"{base}/v1/tenants/{TENANT}/institutions"
        self.admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-36"))
        self.reader = auth(token(TENANT, Role.AUDITOR))

    async def register(self, name: str, **headers: str) -> httpx.Response:
        return await self.http.post(
            self.url,
            json={"name": name, "kind": "lksa", "pdm": PDM},
            headers={**self.admin, **headers},
        )

    async def read(self, institution_id: str, **headers: str) -> httpx.Response:
        return await self.http.get(
            f"{self.url}/{institution_id}", headers={**self.reader, **headers}
        )


def position_of(response: httpx.Response) -> str:
    position = response.headers["mpks-position"]
    assert int(position) > 0, position
    return position


async def test_a_client_reads_what_it_just_wrote(services: dict[str, str], token: Any) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        positions: list[int] = []
        for i in range(50):
            name = f"LKSA Baca Tulisan {i} {uuid4().hex[:6]}"
            created = await registry.register(name)
            assert created.status_code == 201, created.text
            position = position_of(created)
            positions.append(int(position))
            read = await registry.read(created.json()["id"], **{"Mpks-Min-Position": position})
            assert read.status_code == 200, (i, read.text)
            assert read.json()["name"] == name
            # The list behind the same read model waits the same way.
            listed = await http.get(
                registry.url,
                params={"limit": 500},
                headers={**registry.reader, "Mpks-Min-Position": position},
            )
            assert listed.status_code == 200, listed.text
            assert name in {row["name"] for row in listed.json()}
        assert positions == sorted(positions)

        # An update too: the read shows the new name, not the one before it.
        institution_id = created.json()["id"]
        renamed = await http.post(
            f"{registry.url}/{institution_id}/rename",
            json={"name": "LKSA Nama Baru"},
            headers={**registry.admin, "If-Match": '"1"'},
        )
        assert renamed.status_code == 200, renamed.text
        assert int(position_of(renamed)) > positions[-1]
        read = await registry.read(institution_id, **{"Mpks-Min-Position": position_of(renamed)})
        assert read.status_code == 200, read.text
        assert read.json()["name"] == "LKSA Nama Baru"
        assert read.headers["etag"] == '"2"'


async def test_a_replayed_command_carries_a_position_to_read_at(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        key = {"Idempotency-Key": str(uuid4())}
        first = await registry.register("LKSA Diulang", **key)
        assert first.status_code == 201, first.text
        again = await registry.register("LKSA Diulang", **key)
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert int(position_of(again)) >= int(position_of(first))
        read = await registry.read(first.json()["id"], **{"Mpks-Min-Position": position_of(again)})
        assert read.status_code == 200, read.text


async def test_a_position_the_read_models_never_reach_waits_the_bound_then_says_so(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        created = await registry.register("LKSA Masa Depan")
        assert created.status_code == 201, created.text
        ahead = str(int(position_of(created)) + 1_000_000)

        started = time.monotonic()
        read = await registry.read(
            created.json()["id"], **{"Mpks-Min-Position": ahead, "Prefer": "wait=1"}
        )
        waited = time.monotonic() - started
        assert read.status_code == 503, read.text
        assert read.headers["content-type"].startswith(PROBLEM_JSON)
        assert read.headers["retry-after"] == "1"
        assert int(read.headers["mpks-position"]) >= int(position_of(created))
        assert ahead in read.json()["detail"]
        assert waited >= 1.0

        # The default bound (3 s) applies without a preference, and no preference stretches
        # it past the cap (10 s).
        started = time.monotonic()
        read = await registry.read(created.json()["id"], **{"Mpks-Min-Position": ahead})
        assert read.status_code == 503, read.text
        assert 3.0 <= time.monotonic() - started < 10.0


async def test_a_malformed_position_is_refused_naming_the_header(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        for bad in ("-1", "abc", "1.5", str(2**63)):
            read = await registry.read(str(uuid4()), **{"Mpks-Min-Position": bad})
            assert read.status_code == 422, (bad, read.text)
            assert read.headers["content-type"].startswith(PROBLEM_JSON)
            assert read.json()["errors"][0]["field"] == "Mpks-Min-Position"
            assert read.json()["errors"][0]["source"] == "header"


async def test_the_api_document_describes_the_headers(services: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        spec = await http.get(f"{services['registry']}/docs/openapi.json")
    paths = spec.json()["paths"]
    read = paths["/v1/tenants/{tenant}/institutions/{institution_id}"]["get"]
    headers = {p["name"] for p in read["parameters"] if p["in"] == "header"}
    assert {"Mpks-Min-Position", "Prefer"} <= headers
    assert "503" in read["responses"]
    register = paths["/v1/tenants/{tenant}/institutions"]["post"]
    assert "Mpks-Position" in register["responses"]["201"]["headers"]
