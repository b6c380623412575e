"""In-memory stand-ins for the ports of the service layer, so every handler has a fast unit
test without PostgreSQL: the unit of work keeps the rules every store shares (scope, If-Match,
idempotency, optimistic concurrency) from the kernel's base class and stores in a dict."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from shared.domain.aggregate import AggregateRoot
from shared.eventstore.context import CommandContext
from shared.service_layer.handlers import HandlerRegistry
from shared.service_layer.messagebus import MessageBus, PortFactory
from shared.service_layer.unit_of_work import (
    ConcurrentWrite,
    IdempotencyRecord,
    StaleRead,
    UnitOfWork,
)


@dataclass
class MemoryStore:
    """Every tenant's records, events (in commit order) and Idempotency-Keys."""

    records: dict[tuple[str, UUID], AggregateRoot] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)
    keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)

    def events_of(self, tenant: str) -> list[Any]:
        return [event for t, event in self.events if t == tenant]


class FakeUnitOfWork(UnitOfWork):
    def __init__(
        self, store: MemoryStore, ctx: CommandContext, expected_versions: Mapping[UUID, int]
    ) -> None:
        super().__init__(ctx.tenant, ctx.scope, expected_versions)
        self.store = store

    async def _load(self, aggregate_id: UUID) -> AggregateRoot | None:
        found = self.store.records.get((self.tenant, aggregate_id))
        # A copy, as a reload from the log would be: a command that fails changes nothing.
        return copy.deepcopy(found)

    async def _save(
        self,
        aggregates: Sequence[AggregateRoot],
        idempotency: IdempotencyRecord | None,
        reads: Mapping[UUID, int],
    ) -> int | None:
        for record_id, version in reads.items():
            consulted = self.store.records.get((self.tenant, record_id))
            if (consulted.version if consulted else 0) != version:
                raise StaleRead(str(record_id))
        if idempotency is not None and (self.tenant, idempotency.key) in self.store.keys:
            raise ConcurrentWrite(idempotency.key)
        for aggregate in aggregates:
            stored = self.store.records.get((self.tenant, aggregate.id))
            if (stored.version if stored else 0) != aggregate.pending_events[
                0
            ].originator_version - 1:
                raise ConcurrentWrite(str(aggregate.id))
        for aggregate in aggregates:
            self.store.events.extend((self.tenant, e) for e in aggregate.collect_events())
            self.store.records[(self.tenant, aggregate.id)] = copy.deepcopy(aggregate)
        if idempotency is not None:
            self.store.keys[(self.tenant, idempotency.key)] = idempotency
        return len(self.store.events) if aggregates else None

    async def find_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        return self.store.keys.get((self.tenant, key))

    async def head(self) -> int | None:
        return len(self.store.events) or None


class FakeUnitsOfWork:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @asynccontextmanager
    async def __call__(
        self, tenant: str, ctx: CommandContext, expected_versions: Mapping[UUID, int]
    ) -> AsyncIterator[UnitOfWork]:
        yield FakeUnitOfWork(self.store, ctx, expected_versions)


@dataclass
class FixedClock:
    day: date

    def now(self) -> datetime:
        return datetime.combine(self.day, time(9), UTC)

    def today(self, province: str) -> date:
        # 09:00 UTC is the same day in every Indonesian time zone.
        return self.day


def memory_bus(
    package: str,
    store: MemoryStore,
    *,
    today: date = date(2026, 11, 24),
    ports: Mapping[str, PortFactory] | None = None,
) -> MessageBus:
    """A service's handlers (its use-case package) on memory."""
    return MessageBus(
        HandlerRegistry.discover(package),
        FakeUnitsOfWork(store),
        clock=FixedClock(today),
        ports=ports,
    )
