"""What a service contributes to the kernel: its name, aggregates, read models, reactions
and HTTP controllers. Everything else (stores, relay, consumers, HTTP) comes from `shared`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

from eventsourcing.domain import Aggregate

from shared.messaging.consumer import Reaction
from shared.projections.runner import Projection


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    title: str
    aggregates: Sequence[tuple[str, type[Aggregate]]]
    migrations: Traversable
    controllers: Sequence[type[Any]]
    projections: Callable[[], list[Projection]] = list
    # Source service -> reactions to that service's events.
    reactions: Mapping[str, Callable[[], list[Reaction]]] = field(default_factory=dict)
