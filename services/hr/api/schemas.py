"""Request and response bodies of the HR API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec


class RegisterWorker(msgspec.Struct, forbid_unknown_fields=True):
    full_name: Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")]
    birth_date: date
    pdm: Annotated[str, msgspec.Meta(pattern=r"^\d{4}$")] | None = None


class WorkerView(msgspec.Struct):
    id: UUID
    full_name: str
    birth_date: date
    pdm: str | None
    version: int
    registered_at: datetime
