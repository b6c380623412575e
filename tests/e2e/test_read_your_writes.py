"""Reading one's own writes over HTTP: a command answers with its position in the tenant log
(`Mpks-Position`); a read sending it back (`Mpks-Min-Position`) sees the command's effect,
although read models are eventual. Past the bounded wait the answer says so (503); a
position beyond the log is refused at once (412)."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from shared.auth import Role
from shared.settings import Settings
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


async def test_a_position_beyond_the_log_is_refused_at_once(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        created = await registry.register("LKSA Masa Depan")
        assert created.status_code == 201, created.text
        ahead = str(int(position_of(created)) + 1_000_000)

        started = time.monotonic()
        read = await registry.read(
            created.json()["id"], **{"Mpks-Min-Position": ahead, "Prefer": "wait=5"}
        )
        # No command answered that position: waiting cannot help, so nobody waits.
        assert time.monotonic() - started < 2.0
        assert read.status_code == 412, read.text
        assert read.headers["content-type"].startswith(PROBLEM_JSON)
        assert int(read.headers["mpks-position"]) >= int(position_of(created))
        assert read.json()["errors"][0]["field"] == "Mpks-Min-Position"


async def test_a_read_model_that_does_not_catch_up_in_time_is_never_read_stale(
    services: dict[str, str], settings: Settings, token: Any
) -> None:
    """The projection of the tenant is held up (its lock taken): a read of what a command
    just wrote waits the bound, then says so (503, Retry-After), and reads it once free."""
    assert settings.database_url is not None
    holder = await asyncpg.connect(settings.database_url)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            registry = Registry(http, services["registry"], token)
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"institutions/{TENANT}"
            )
            created = await registry.register("LKSA Tertahan")
            assert created.status_code == 201, created.text
            position = position_of(created)

            started = time.monotonic()
            read = await registry.read(
                created.json()["id"], **{"Mpks-Min-Position": position, "Prefer": "wait=1"}
            )
            waited = time.monotonic() - started
            assert read.status_code == 503, read.text
            assert read.headers["retry-after"] == "1"
            assert int(read.headers["mpks-position"]) < int(position)
            assert position in read.json()["detail"]
            assert read.json()["code"] == "read-models-behind"
            assert 1.0 <= waited < 5.0

            # The default bound (3 s) applies without a preference.
            started = time.monotonic()
            read = await registry.read(created.json()["id"], **{"Mpks-Min-Position": position})
            assert read.status_code == 503, read.text
            assert 3.0 <= time.monotonic() - started < 10.0

            await transaction.rollback()
            read = await registry.read(created.json()["id"], **{"Mpks-Min-Position": position})
            assert read.status_code == 200, read.text
            assert read.json()["name"] == "LKSA Tertahan"
    finally:
        await holder.close()


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
    assert {"412", "503"} <= set(read["responses"])
    register = paths["/v1/tenants/{tenant}/institutions"]["post"]
    assert "Mpks-Position" in register["responses"]["201"]["headers"]
