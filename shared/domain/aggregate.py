"""Base class for every aggregate of every service.

Each aggregate declares its events as explicit nested classes (the event's fields are its
annotations: the published contract, `tests/contracts/events.json`), triggers them with
`self.trigger_event(self.Suspended, ...)` once its rules hold, and applies them in its own
`@singledispatchmethod apply(event)`, one `@apply.register` per event. Creation events
subclass `AggregateRoot.Created` and are applied by `__init__` (`@event(Registered)`).

Events carry only domain data; who did it, why and in which tenant travel in the command
context and are added to the stored envelope at the edge.
"""

from __future__ import annotations

from typing import Any

# The library's variant: it defers a registration whose annotation names the aggregate
# class still being defined (`event: Institution.Suspended` inside `Institution`).
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event

from shared.domain.organisation import PROVINCE, Scope

__all__ = ["AggregateRoot", "event", "singledispatchmethod"]


class AggregateRoot(Aggregate):
    """Common base, so kernel behaviour can be added to every aggregate in one place."""

    class Event(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.apply(self)

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Events that change no state here: creation events (applied by `__init__`).
        An aggregate with other events declares its own `apply`, so that its
        registrations stay its own."""

    @property
    def scope(self) -> Scope:
        """Where the record sits, as the write side knows it; the command runner refuses
        an actor it does not cover. A record that names no PDM or institution belongs to
        the province: only province-wide actors may change it."""
        return PROVINCE
