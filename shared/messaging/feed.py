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


class LogHeads(msgspec.Struct, frozen=True, kw_only=True):
    """The last position of every tenant log of a service (0: no events yet)."""

    heads: dict[str, int]


class FeedClient:
    """Reads another service's events feed over HTTP, as a read-only national reader."""

    def __init__(self, settings: Settings, source: str, me: str) -> None:
        self.settings = settings
        self.base_url = settings.service_url(source)
        self.me = me
        self._decoder = msgspec.json.Decoder(FeedPage)
        self._heads_decoder = msgspec.json.Decoder(LogHeads)

    def _token(self) -> str:
        # Minted per use in development (a long-running service outlives any one token).
        return self.settings.service_token or mint_dev_token(
            self.settings, sub=f"service:{self.me}", tenant=NATIONAL, roles=[Role.SERVICE]
        )

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._token()}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)

    async def read(self, tenant: str, after: int, until: int | None) -> list[EventEnvelope]:
        """Events of `tenant` after `after` (up to `until`, or to the head), page by page."""
        events: list[EventEnvelope] = []
        async with self._client() as client:
            while until is None or after < until:
                response = await client.get(
                    f"/v1/tenants/{tenant}/events", params={"after": after, "limit": 500}
                )
                response.raise_for_status()
                page = self._decoder.decode(response.content)
                batch = [e for e in page.events if until is None or e.position <= until]
                if not batch:
                    break
                events.extend(batch)
                after = batch[-1].position
        return events

    async def heads(self) -> dict[str, int]:
        """The last position of every tenant log of the source service."""
        async with self._client() as client:
            response = await client.get("/v1/events/heads")
            response.raise_for_status()
        return self._heads_decoder.decode(response.content).heads
