"""Commands under contention and retries, over HTTP against the running services: optimistic
concurrency (If-Match → 409), concurrent writers, and Idempotency-Key replays.

The events feed is the witness: whatever the answers say, the log must hold exactly the
events of the commands that were told they succeeded.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import httpx

from shared.auth import Role
from tests.helpers import auth, eventually

TENANT = "34"
PDM = "3471"
PROBLEM_JSON = "application/problem+json"


class Registry:
    """The registry as a client sees it, in tenant 34."""

    def __init__(self, http: httpx.AsyncClient, base: str, token: Any) -> None:
        self.http = http
        self.url = f"{base}/v1/tenants/{TENANT}"
        self.admin = auth(token(TENANT, Role.WILAYAH_ADMIN, sub="admin-34"))
        self.auditor = auth(token(TENANT, Role.AUDITOR))

    async def register(self, name: str, **headers: str) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/institutions",
            json={"name": name, "kind": "lksa", "pdm": PDM},
            headers={**self.admin, **headers},
        )

    async def registered(self, name: str) -> str:
        r = await self.register(name)
        assert r.status_code == 201, r.text
        institution_id: str = r.json()["id"]
        return institution_id

    async def rename(self, institution_id: str, name: str, **headers: str) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/institutions/{institution_id}/rename",
            json={"name": name},
            headers={**self.admin, **headers},
        )

    async def read(self, institution_id: str) -> httpx.Response:
        return await self.http.get(
            f"{self.url}/institutions/{institution_id}", headers=self.auditor
        )

    async def read_when(self, institution_id: str, version: int) -> httpx.Response:
        """The read model once it has caught up with `version` (it is eventual)."""

        async def caught_up() -> httpx.Response | None:
            r = await self.read(institution_id)
            return r if r.status_code == 200 and r.json()["version"] >= version else None

        response: httpx.Response = await eventually(caught_up)
        return response

    async def events(self) -> list[dict[str, Any]]:
        """The tenant's whole log, page by page."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            r = await self.http.get(
                f"{self.url}/events", params={"after": after, "limit": 1000}, headers=self.auditor
            )
            assert r.status_code == 200, r.text
            page = r.json()["events"]
            if not page:
                return events
            events.extend(page)
            after = page[-1]["position"]

    async def events_of(self, institution_id: str) -> list[dict[str, Any]]:
        return [e for e in await self.events() if e["aggregate_id"] == institution_id]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def unique(name: str) -> str:
    return f"{name} {uuid4().hex[:8]}"


async def test_stale_if_match_is_a_conflict_and_loses_nothing(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        registry = Registry(http, services["registry"], token)
        institution_id = await registry.registered(unique("LKSA Basi"))
        etag = (await registry.read_when(institution_id, 1)).headers["etag"]
        assert etag == '"1"'

        first = await registry.rename(institution_id, "LKSA Nama Pertama", **{"If-Match": etag})
        assert first.status_code == 200, first.text
        assert first.json() == {"id": institution_id, "version": 2}

        stale = await registry.rename(
            institution_id, "LKSA Nama Kedua", **{"If-Match": etag, "Accept-Language": "en"}
        )
        body = problem(stale, 409)
        assert body["code"] == "conflict"
        assert "version 2" in body["detail"]

        # A version from the future is just as stale.
        ahead = await registry.rename(institution_id, "LKSA Nama Ketiga", **{"If-Match": '"7"'})
        problem(ahead, 409)

        view = (await registry.read_when(institution_id, 2)).json()
        assert view["name"] == "LKSA Nama Pertama"
        assert view["version"] == 2
        events = await registry.events_of(institution_id)
    assert [(e["event"], e["aggregate_version"]) for e in events] == [
        ("Registered", 1),
        ("Renamed", 2),
    ]
    assert events[1]["data"]["name"] == "LKSA Nama Pertama"


async def test_concurrent_writers_with_the_same_if_match_have_one_winner(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        institution_id = await registry.registered(unique("PSKM Rebutan"))
        names = [f"PSKM Penulis {i}" for i in range(8)]
        answers = await asyncio.gather(
            *(registry.rename(institution_id, name, **{"If-Match": '"1"'}) for name in names)
        )
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] + [409] * 7, [(r.status_code, r.text) for r in answers]
        for loser in (r for r in answers if r.status_code == 409):
            problem(loser, 409)
        winner = names[[r.status_code for r in answers].index(200)]

        renamed = [e for e in await registry.events_of(institution_id) if e["event"] == "Renamed"]
        assert [e["data"]["name"] for e in renamed] == [winner]
        view = (await registry.read_when(institution_id, 2)).json()
        assert view["name"] == winner
        assert view["version"] == 2


async def test_concurrent_writers_without_if_match_lose_no_update(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        institution_id = await registry.registered(unique("Rumah Sakinah Ramai"))
        names = [f"Rumah Sakinah {i}" for i in range(10)]
        answers = await asyncio.gather(*(registry.rename(institution_id, n) for n in names))

        # Last-writer-wins is fine, a silent overwrite or a crash is not: each writer is told
        # either that its change is recorded or that it collided.
        assert {r.status_code for r in answers} <= {200, 409}, [
            (r.status_code, r.text) for r in answers
        ]
        accepted = {
            n: r.json()["version"]
            for n, r in zip(names, answers, strict=True)
            if r.status_code == 200
        }
        assert accepted, "at least one writer must succeed"
        # Each success got its own version: no two writers were told they wrote the same one.
        assert sorted(accepted.values()) == list(range(2, 2 + len(accepted)))

        renamed = [e for e in await registry.events_of(institution_id) if e["event"] == "Renamed"]
        assert len(renamed) == len(accepted)
        assert {e["data"]["name"]: e["aggregate_version"] for e in renamed} == accepted

        final = 1 + len(accepted)
        view = (await registry.read_when(institution_id, final)).json()
        assert view["version"] == final
        assert view["name"] == max(accepted, key=lambda n: accepted[n])


async def test_idempotency_key_replays_the_first_answer(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        registry = Registry(http, services["registry"], token)
        key = f"register-{uuid4()}"
        name = unique("PAKM Sekali Saja")

        first = await registry.register(name, **{"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        again = await registry.register(name, **{"Idempotency-Key": key})
        assert again.status_code == first.status_code
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"

        other_name = unique("PAKM Lain")
        reused = await registry.register(other_name, **{"Idempotency-Key": key})
        body = problem(reused, 422)
        assert [e["field"] for e in body["errors"]] == ["Idempotency-Key"]
        assert [e["source"] for e in body["errors"]] == ["header"]

        events = await registry.events()
    registered = [
        e for e in events if e["event"] == "Registered" and e["data"]["name"] in {name, other_name}
    ]
    assert [(e["aggregate_id"], e["data"]["name"]) for e in registered] == [
        (first.json()["id"], name)
    ]


async def test_idempotency_key_holds_under_parallel_retries(
    services: dict[str, str], token: Any
) -> None:
    # Several rounds: the race between two requests with one key is decided inside one
    # database transaction and a single round can miss the losing interleaving.
    async with httpx.AsyncClient(timeout=30) as http:
        registry = Registry(http, services["registry"], token)
        rounds = {f"register-{uuid4()}": unique("Bakesos Paralel") for _ in range(8)}
        for key, name in rounds.items():
            answers = await asyncio.gather(
                *(registry.register(name, **{"Idempotency-Key": key}) for _ in range(6))
            )
            assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
            assert len({r.json()["id"] for r in answers}) == 1
            # Exactly one request did the work; the others were told they are replays.
            replayed = [r.headers.get("idempotent-replayed") for r in answers]
            assert replayed.count("true") == 5, replayed

        events = await registry.events()
    registered = [e for e in events if e["event"] == "Registered"]
    for name in rounds.values():
        assert len([e for e in registered if e["data"]["name"] == name]) == 1, name


async def test_idempotency_key_replays_a_rename_without_a_second_event(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        registry = Registry(http, services["registry"], token)
        institution_id = await registry.registered(unique("Senior Care Ulang"))
        key = f"rename-{uuid4()}"
        first = await registry.rename(
            institution_id, "Senior Care Baru", **{"Idempotency-Key": key, "If-Match": '"1"'}
        )
        assert first.status_code == 200, first.text
        # The retry carries the now stale If-Match: it must get the first answer, not a 409.
        again = await registry.rename(
            institution_id, "Senior Care Baru", **{"Idempotency-Key": key, "If-Match": '"1"'}
        )
        assert again.status_code == 200, again.text
        assert again.json() == first.json() == {"id": institution_id, "version": 2}
        assert again.headers["idempotent-replayed"] == "true"
        events = await registry.events_of(institution_id)
    assert [e["event"] for e in events] == ["Registered", "Renamed"]


async def test_malformed_if_match_names_the_header_and_writes_nothing(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        registry = Registry(http, services["registry"], token)
        institution_id = await registry.registered(unique("Disability Center Header"))
        r = await registry.rename(institution_id, "Nama Apa Saja", **{"If-Match": "abc"})
        body = problem(r, 422)
        assert [e["field"] for e in body["errors"]] == ["If-Match"]
        assert [e["source"] for e in body["errors"]] == ["header"]
        events = await registry.events_of(institution_id)
    assert [e["event"] for e in events] == ["Registered"]


async def test_closing_an_institution_needs_it_active_and_leaves_it_read_only(
    services: dict[str, str], token: Any
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        registry = Registry(http, services["registry"], token)
        institution_id = await registry.registered(unique("LKSA Tutup"))
        url = f"{registry.url}/institutions/{institution_id}"
        decision = {"reason": "Keputusan rapat pleno No. 31/KEP/2026"}
        en = {**registry.admin, "Accept-Language": "en"}

        suspended = await http.post(f"{url}/suspend", json=decision, headers=registry.admin)
        assert suspended.status_code == 200, suspended.text
        refused = problem(await http.post(f"{url}/close", json=decision, headers=en), 422)
        assert "reinstate it first" in refused["detail"]
        assert refused["errors"][0]["field"] == "status"
        # Only the governors of the province close; a PDM operator's token is refused.
        operator = auth(token(TENANT, Role.PDM_OPERATOR, pdm=PDM))
        problem(await http.post(f"{url}/close", json=decision, headers=operator), 403)

        await http.post(f"{url}/reinstate", json=decision, headers=registry.admin)
        closed = await http.post(
            f"{url}/close", json=decision, headers={**registry.admin, "If-Match": '"3"'}
        )
        assert closed.status_code == 200, closed.text
        assert closed.json() == {"id": institution_id, "version": 4}
        problem(await registry.rename(institution_id, "LKSA Dibuka Lagi"), 422)
        assert (await registry.read_when(institution_id, 4)).json()["status"] == "closed"
        events = await registry.events_of(institution_id)
    assert [e["event"] for e in events] == ["Registered", "Suspended", "Reinstated", "Closed"]
    assert events[-1]["meta"]["reason"] == decision["reason"]
    assert events[-1]["meta"]["actor"] == "admin-34"
