"""What a handler may need besides its unit of work, as ports: the acting user and the time.
Services add their own ports (read-side lookups a rule needs) in their composition."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol

import msgspec

from shared.domain.organisation import PROVINCE, Scope
from shared.tenancy.provinces import local_date


class Actor(msgspec.Struct, frozen=True):
    """Who runs the command and how far their token reaches in the province."""

    id: str
    scope: Scope = PROVINCE


class Clock(Protocol):
    def now(self) -> datetime: ...

    def today(self, province: str) -> date:
        """The day it is in the province (WIB, WITA or WIT): a date a user enters, such as
        a decision's, is of their own day, which in Papua starts nine hours before UTC's."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self, province: str) -> date:
        return local_date(province, self.now())
