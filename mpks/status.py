"""`mpks status`: is each service up and ready, and how far behind are its background parts."""

from __future__ import annotations

import httpx

from services.bootstrap import SERVICES
from shared.settings import Settings


async def status(settings: Settings) -> int:
    healthy = True
    async with httpx.AsyncClient(timeout=3) as client:
        for name in SERVICES:
            url = settings.service_url(name)
            try:
                response = await client.get(f"{url}/health/ready")
                body = response.json()
                lags = _lags((await client.get(f"{url}/metrics")).text)
                print(f"{name:<9} {url:<24} {body.get('status')}  {body.get('checks')}  {lags}")
                for task, why in (body.get("tasks") or {}).items():
                    print(f"{'':<9} task {task}: {why}")
                for stall in body.get("stalls") or []:
                    print(
                        f"{'':<9} stalled {stall['follower']} tenant {stall['tenant']} "
                        f"at {stall['position']} ({stall['attempts']} attempts): {stall['reason']}"
                    )
                healthy &= body.get("status") == "ready"
            except httpx.HTTPError as exc:
                print(f"{name:<9} {url:<24} down ({type(exc).__name__})")
                healthy = False
    return 0 if healthy else 1


def _lags(metrics: str) -> str:
    keep = (
        "mpks_relay_lag_events",
        "mpks_projection_lag_events",
        "mpks_consumer_lag_events",
        "mpks_consumer_parked_messages",
        "mpks_stalled_tenants",
    )
    parts = [
        line.replace("mpks_", "").replace("_events", "")
        for line in metrics.splitlines()
        if line.startswith(keep)
    ]
    return " ".join(parts)
