"""Maps domain events to stored events: stable names, JSON state, metadata envelope.

The state is plain JSON (msgspec) so the relay, the events feed and auditors read it without
the domain classes. Reading (upcasting, typed fields) is the catalogue's, as for every other
reader of the logs.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.context import current_context
from shared.eventstore.envelope import EventMeta, StoredState

_KEYS_OUTSIDE_DATA = ("originator_id", "originator_version")


class EnvelopeMapper(Mapper[UUID]):
    def __init__(self, catalogue: EventCatalogue) -> None:
        # The base class wants a transcoder; this mapper encodes by itself.
        super().__init__(transcoder=None)  # type: ignore[arg-type]
        self.catalogue = catalogue
        self._encoder = msgspec.json.Encoder()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        name = self.catalogue.name_of(cls)
        data = {k: v for k, v in vars(domain_event).items() if k not in _KEYS_OUTSIDE_DATA}
        if "originator_topic" in data:
            # Created events name the aggregate class; store its stable name instead.
            aggregate_cls = _resolve_aggregate(data["originator_topic"])
            data["originator_topic"] = self.catalogue.aggregate_name(aggregate_cls)
        ctx = current_context()
        state = StoredState(
            v=getattr(cls, "class_version", 1),
            meta=EventMeta(
                tenant=ctx.tenant,
                actor=ctx.actor,
                correlation_id=ctx.correlation_id,
                causation_id=ctx.causation_id,
                reason=ctx.reason,
                command_id=ctx.command_id,
            ),
            data=data,
        )
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=name,
            state=self._encoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        stored = msgspec.json.decode(stored_event.state, type=StoredState)
        data = dict(stored.data)
        timestamp = data.pop("timestamp")
        # The aggregate's stable name: the catalogue knows it from the event's name.
        data.pop("originator_topic", None)
        originator_id = stored_event.originator_id
        return self.catalogue.decode(
            stored_event.topic,
            stored.v,
            data,
            originator_id=(
                originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
            ),
            originator_version=stored_event.originator_version,
            timestamp=timestamp,
        )


def _resolve_aggregate(topic: str) -> type[Any]:
    resolved: type[Any] = resolve_topic(topic)
    return resolved
