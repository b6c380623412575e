"""What a service contributes to the kernel: its name, aggregates, read models, reactions
and HTTP controllers. Everything else (stores, relay, consumers, HTTP) comes from `shared`,
including the records the kernel keeps in every service: the access log
(`shared.audit.access`: its aggregate, command and read model)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

from eventsourcing.domain import Aggregate

from shared.audit.access import ACCESS, Access, AccessLogProjection, record_access
from shared.audit.snapshots import Snapshots, SnapshotsProjection
from shared.db.pool import DbPool
from shared.domain.labels import LabelCatalogue

# At run time, not only for the type checker: a handler taking the runtime as a dependency
# (e.g. the licence and accreditation lists) has litestar resolve its annotations.
from shared.http.public import PublicResource
from shared.messaging.consumer import Reaction
from shared.projections.runner import Projection
from shared.service_layer.handlers import HandlerRegistry, handler_of
from shared.service_layer.messagebus import MessageBus, PortFactory
from shared.service_layer.process_managers import ProcessManager


def _no_ports(db: DbPool) -> Mapping[str, PortFactory]:
    return {}


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    title: str
    aggregates: Sequence[tuple[str, type[Aggregate]]]
    migrations: Traversable
    controllers: Sequence[type[Any]]
    # Aggregate name -> the resource it is served as (`institutions`): the kernel adds its
    # history route, `GET /v1/tenants/{t}/<resource>/{id}/history`.
    resources: Mapping[str, str] = field(default_factory=dict)
    # Its command handlers: `HandlerRegistry.discover` of its use-case package.
    handlers: Callable[[], HandlerRegistry] = HandlerRegistry
    # The ports its handlers need besides the unit of work, the actor and the clock (the
    # read-side lookups a rule needs), by parameter name, each made per tenant.
    ports: Callable[[DbPool], Mapping[str, PortFactory]] = _no_ports
    projections: Callable[[], list[Projection]] = list
    # Source service -> reactions to that service's events.
    reactions: Mapping[str, Callable[[], list[Reaction]]] = field(default_factory=dict)
    # Source service (its own name included) -> process managers acting on that service's
    # events by issuing commands on this service's bus.
    process_managers: Mapping[str, Callable[[MessageBus], list[ProcessManager]]] = field(
        default_factory=dict
    )

    # The labels of its enums, served at `GET /v1/labels` (`shared.domain.labels`).
    labels: Sequence[LabelCatalogue] = ()
    # Read models anyone may read, without a token (`shared.http.public`).
    public: Sequence[PublicResource] = ()

    def __post_init__(self) -> None:
        # In `aggregates` itself, so every catalogue of this service's events (its own, a
        # follower's, a tool's) reads the kernel's events too.
        if all(name != ACCESS for name, _ in self.aggregates):
            object.__setattr__(self, "aggregates", [*self.aggregates, (ACCESS, Access)])

    def command_handlers(self) -> HandlerRegistry:
        """The service's handlers and the kernel's (recording an access)."""
        registry = self.handlers()
        registry.add(handler_of(record_access))
        return registry

    def read_models(self, snapshots: Snapshots) -> list[Projection]:
        """The service's projections and the kernel's (the access log, the records'
        snapshots): what the worker runs and `mpks rebuild` rebuilds."""
        return [*self.projections(), AccessLogProjection(self.name), SnapshotsProjection(snapshots)]

    @property
    def followed(self) -> list[str]:
        """The other services whose events this one reads."""
        sources = {*self.reactions, *self.process_managers} - {self.name}
        return sorted(sources)
