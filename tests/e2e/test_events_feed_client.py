"""How a consumer refills a hole NATS left: it reads the source service's events feed over
HTTP, with the service token, and gets the tenant's events in order."""

from __future__ import annotations

from typing import Any

import httpx

from shared.auth import Role
from shared.messaging.feed import FeedClient
from shared.settings import Settings
from tests.helpers import auth


async def test_feed_client_reads_a_range_of_the_registry_log_across_pages(
    services: dict[str, str], settings: Settings, token: Any
) -> None:
    admin = token("36", Role.WILAYAH_ADMIN)
    async with httpx.AsyncClient(headers=auth(admin), timeout=10) as http:
        for i in range(3):
            r = await http.post(
                f"{services['registry']}/v1/tenants/36/institutions",
                json={"name": f"LKSA Muhammadiyah Banten {i}", "kind": "lksa", "pdm": "3601"},
            )
            assert r.status_code == 201, r.text
        head = (await http.get(f"{services['registry']}/v1/tenants/36/events")).json()["head"]

    feed = FeedClient(settings, "registry", "cases")
    events = await feed.read("36", 0, head)
    assert [e.position for e in events][-3:] == [head - 2, head - 1, head]
    assert all(e.tenant == "36" and e.service == "registry" for e in events)
    assert [e.data["name"] for e in events][-3:] == [
        f"LKSA Muhammadiyah Banten {i}" for i in range(3)
    ]
    # A bounded range stops where it was asked to.
    assert [e.position for e in await feed.read("36", head - 2, head - 1)] == [head - 1]
    # Unbounded: up to the head. And the heads of every tenant, as reconciliation reads them.
    assert [e.position for e in await feed.read("36", head - 1, None)] == [head]
    heads = await feed.heads()
    assert heads["36"] == head
    assert len(heads) == 38
