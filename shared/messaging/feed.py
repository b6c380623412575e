"""The events feed as a client sees it: how a consumer refills a hole NATS left, from the
source service's `GET /v1/tenants/{tenant}/events` (PostgreSQL is the source of truth)."""

from __future__ import annotations

import httpx
import msgspec

from shared.auth import Role, mint_dev_token
from shared.eventstore.envelope import EventEnvelope
from shared.settings import Settings
from shared.tenancy import NATIONAL


class FeedPage(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    after: int
    head: int
    events: list[EventEnvelope]


class FeedClient:
    """Reads another service's events feed over HTTP, as a read-only national reader."""

    def __init__(self, settings: Settings, source: str, me: str) -> None:
        self.settings = settings
        self.base_url = settings.service_url(source)
        self.me = me
        self._decoder = msgspec.json.Decoder(FeedPage)

    def _token(self) -> str:
        # Minted per use in development (a long-running service outlives any one token).
        return self.settings.service_token or mint_dev_token(
            self.settings, sub=f"service:{self.me}", tenant=NATIONAL, roles=[Role.AUDITOR]
        )

    async def __call__(self, tenant: str, after: int, until: int) -> list[EventEnvelope]:
        events: list[EventEnvelope] = []
        headers = {"Authorization": f"Bearer {self._token()}"}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10) as client:
            while after < until:
                response = await client.get(
                    f"/v1/tenants/{tenant}/events", params={"after": after, "limit": 500}
                )
                response.raise_for_status()
                page = self._decoder.decode(response.content)
                batch = [e for e in page.events if e.position <= until]
                if not batch:
                    break
                events.extend(batch)
                after = batch[-1].position
        return events
