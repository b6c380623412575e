"""Request and response bodies of the cases API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from services.cases.domain.complaint import Channel


class ReceiveComplaint(msgspec.Struct, forbid_unknown_fields=True):
    channel: Channel
    summary: Annotated[str, msgspec.Meta(min_length=5, max_length=5000)]
    concerns_child: bool = False
    institution_id: UUID | None = None


class ComplaintView(msgspec.Struct):
    id: UUID
    channel: Channel
    summary: str
    concerns_child: bool
    institution_id: UUID | None
    pdm: str | None
    version: int
    received_at: datetime
    received_by: str


class DirectoryEntry(msgspec.Struct):
    institution_id: UUID
    name: str
    kind: str
    status: str
    pdm: str | None
