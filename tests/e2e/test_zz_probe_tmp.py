from __future__ import annotations
from typing import Any
import httpx

async def test_probe(services: dict[str, str], token: Any) -> None:
    async with httpx.AsyncClient(timeout=10) as h:
        for n, u in services.items():
            r = await h.get(u + "/health/ready")
            print(n, r.status_code, r.text)
