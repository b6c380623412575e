"""What a handler may need besides its unit of work, as ports: the acting user and the time.
Services add their own ports (read-side lookups a rule needs) in their composition."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol

import msgspec

from shared.domain.organisation import PROVINCE, Scope


class Actor(msgspec.Struct, frozen=True):
    """Who runs the command and how far their token reaches in the province."""

    id: str
    scope: Scope = PROVINCE


class Clock(Protocol):
    def now(self) -> datetime: ...

    def today(self) -> date: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()
