"""Maps domain events to stored events: stable names, JSON state, metadata envelope, upcasting.

The state is plain JSON (msgspec) so the relay, the events feed and auditors read it without
the domain classes. Reading decodes each field with its declared type: a plain JSON round trip
would silently turn datetimes, UUIDs and Decimals into strings.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

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
        cls = self.catalogue.class_of(stored_event.topic)
        stored = msgspec.json.decode(stored_event.state, type=StoredState)
        state: dict[str, Any] = dict(stored.data)
        if "originator_topic" in state:
            state["originator_topic"] = get_topic(
                self.catalogue.aggregate_class(state["originator_topic"])
            )
        current_version = getattr(cls, "class_version", 1)
        version = stored.v
        while version < current_version:
            # Released events never change meaning: old versions are upgraded on read.
            getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        types = self.catalogue.field_types(cls)
        for key, value in state.items():
            declared = types.get(key)
            if declared is not None and key != "originator_topic":
                state[key] = msgspec.convert(value, declared, strict=False)
        originator_id = stored_event.originator_id
        state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        )
        state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event


def _resolve_aggregate(topic: str) -> type[Any]:
    resolved: type[Any] = resolve_topic(topic)
    return resolved
