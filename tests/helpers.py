"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
from typing import Any


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def eventually(check: Any, within: float = 15.0, interval: float = 0.1) -> Any:
    """Poll an async check until it returns something truthy (read models are eventual)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)
