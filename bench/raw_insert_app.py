"""The machine's limit for comparison: one HTTP request doing one raw asyncpg INSERT, on the
same server stack (Litestar + uvicorn) as the services, with no event sourcing at all."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import asyncpg
import msgspec
from litestar import Litestar, post


class Row(msgspec.Struct):
    name: str


def create_app() -> Litestar:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            os.environ["MPKS_DATABASE_URL"], min_size=1, max_size=8
        )
        await state["pool"].execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id uuid PRIMARY KEY, name text NOT NULL)"
        )
        yield
        await state["pool"].close()

    @post("/raw", status_code=201)
    async def insert(data: Row) -> dict[str, str]:
        row_id = uuid4()
        await state["pool"].execute(
            "INSERT INTO bench_raw (id, name) VALUES ($1, $2)", row_id, data.name
        )
        return {"id": str(row_id)}

    return Litestar([insert], lifespan=[lifespan], logging_config=None)
