"""Base class for every aggregate of every service.

Aggregates are plain `eventsourcing` aggregates: methods decorated with `@event("Name")`,
invariants checked before the event. Events carry only domain data; who did it, why and in
which tenant travel in the command context and are added to the stored envelope at the edge.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from shared.domain.organisation import PROVINCE, Scope

__all__ = ["AggregateRoot", "event"]


class AggregateRoot(Aggregate):
    """Common base, so kernel behaviour can be added to every aggregate in one place."""

    @property
    def scope(self) -> Scope:
        """Where the record sits, as the write side knows it; the command runner refuses
        an actor it does not cover. A record that names no PDM or institution belongs to
        the province: only province-wide actors may change it."""
        return PROVINCE
