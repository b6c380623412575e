"""Readers of a log (projections, and the reactions of a consumer) get each event typed:
upcast and decoded by the catalogue of the log they follow, and dispatched by its type.

A reader declares one method per event it handles; its registered types are what it reads:

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        ...  # the events this read model does not show

    @on.register
    async def _(
        self, event: Institution.Suspended, conn: DbConnection, envelope: EventEnvelope
    ) -> None: ...

Registering a base class (`Institution.Event`) reads all its events. The envelope still
carries what a row needs beyond the event: tenant, position, occurred_at, meta. Events a
reader does not handle are skipped without being decoded; one it handles but cannot decode
(a version newer than the code) fails like any other error of the reader: it stalls that
tenant only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared.db.pool import DbConnection
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.envelope import EventEnvelope, storable


class Reader(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def on(self) -> Callable[[Any, DbConnection, EventEnvelope], Awaitable[None]]:
        """A `functools.singledispatchmethod`: one registration per event type read."""


def read_types(reader: Reader) -> tuple[type[Any], ...]:
    """The event types `reader.on` is registered for."""
    method = inspect.getattr_static(reader, "on")
    if not isinstance(method, functools.singledispatchmethod):
        raise TypeError(f"{type(reader).__qualname__}.on is not a singledispatchmethod")
    # Binding it first completes registrations the method deferred (the library's variant
    # defers annotations that name a class still being defined).
    getattr(reader, "on")  # noqa: B009
    return tuple(t for t in method.dispatcher.registry if t is not object)


def typed(catalogue: EventCatalogue, envelope: EventEnvelope) -> Any:
    """The domain event an envelope carries, upcast and with its fields' declared types."""
    return catalogue.decode(
        f"{envelope.aggregate}.{envelope.event}",
        envelope.event_version,
        envelope.data,
        originator_id=envelope.aggregate_id,
        originator_version=envelope.aggregate_version,
        timestamp=envelope.occurred_at,
    )


class Dispatch:
    """One reader of one log: which of the log's events it reads, and handing them over."""

    def __init__(self, reader: Reader, catalogue: EventCatalogue) -> None:
        self.reader = reader
        self.catalogue = catalogue
        # Stable names: the envelope names its event, so the rest are skipped undecoded.
        self.names = catalogue.names_of(read_types(reader))

    def reads(self, envelope: EventEnvelope) -> bool:
        return f"{envelope.aggregate}.{envelope.event}" in self.names

    async def deliver(self, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Hand `envelope` to the reader if it reads it: typed, and as a PostgreSQL reader
        can store it (`storable`)."""
        if self.reads(envelope):
            await self.hand_over(conn, storable(envelope), None)

    async def hand_over(self, conn: DbConnection, row: EventEnvelope, decoded: Any) -> Any:
        """Hand a storable envelope the reader reads to it, typed: `decoded` if another
        reader of the same log decoded it already. Returns the typed event, for the next."""
        if decoded is None:
            decoded = typed(self.catalogue, row)
        await self.reader.on(decoded, conn, row)
        return decoded
