"""`mpks status`: is each service up and ready, and how far behind are its background parts."""

from __future__ import annotations

from typing import Any

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
                for line in _deadlines(body.get("deadlines")):
                    print(f"{'':<9} {line}")
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
        "mpks_deadlines_overdue",
        "mpks_deadlines_refused",
    )
    parts = [
        line.replace("mpks_", "").replace("_events", "")
        for line in metrics.splitlines()
        if line.startswith(keep)
    ]
    return " ".join(parts)


def _deadlines(report: dict[str, Any] | None) -> list[str]:
    """Deadlines overdue and refused (`shared.scheduling.report`), one line each kind and
    one per refusal shown."""
    if not report:
        return []
    lines = []
    if report["overdue"]:
        lines.append(
            f"deadlines overdue: {report['overdue']} (the oldest due {report['oldest_overdue']})"
        )
    if report["refused"]:
        lines.append(f"deadlines refused: {report['refused']} (`mpks retry` after a fix)")
    lines += [
        f"refused deadline {r['key']} tenant {r['tenant']} due {r['due_at']} "
        f"({r['attempts']} attempts, next {r['retry_at'] or 'at the next pass'}): {r['reason']}"
        for r in report["refusals"]
    ]
    return lines
