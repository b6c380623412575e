"""Maps domain events to stored events: stable names, JSON state, metadata envelope.

The state is plain JSON (msgspec) so the relay, the events feed and auditors read it without
the domain classes. Reading (upcasting, typed fields) is the catalogue's, as for every other
reader of the logs.

Personal fields (`shared.personal`) are sealed here, under their subject's key, so no
plaintext of them reaches the log; the command path loads the keys first (`subjects`,
`SubjectKeys.ensure`). A mapper without keys refuses to store personal data and reads it
as withheld.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.context import current_context
from shared.eventstore.envelope import EventMeta, StoredState
from shared.personal.fields import is_sealed
from shared.personal.keys import SubjectKeys

_KEYS_OUTSIDE_DATA = ("originator_id", "originator_version")


class EnvelopeMapper(Mapper[UUID]):
    def __init__(self, catalogue: EventCatalogue, keys: SubjectKeys | None = None) -> None:
        # The base class wants a transcoder; this mapper encodes by itself.
        super().__init__(transcoder=None)  # type: ignore[arg-type]
        self.catalogue = catalogue
        self.keys = keys
        self._encoder = msgspec.json.Encoder()

    def subjects(self, domain_events: Iterable[Any]) -> set[str]:
        """The data subjects whose keys sealing `domain_events` needs."""
        found: set[str] = set()
        for domain_event in domain_events:
            for field, personal in self.catalogue.personal_of(type(domain_event)).items():
                if getattr(domain_event, field) is not None:
                    found.add(_subject(domain_event, field, personal.subject))
        return found

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        name = self.catalogue.name_of(cls)
        data = {k: v for k, v in vars(domain_event).items() if k not in _KEYS_OUTSIDE_DATA}
        if "originator_topic" in data:
            # Created events name the aggregate class; store its stable name instead.
            aggregate_cls = _resolve_aggregate(data["originator_topic"])
            data["originator_topic"] = self.catalogue.aggregate_name(aggregate_cls)
        ctx = current_context()
        for field, personal in self.catalogue.personal_of(cls).items():
            if data[field] is None:
                continue
            if self.keys is None:
                raise RuntimeError(f"{name}.{field} is personal: this mapper has no keys")
            subject = _subject(domain_event, field, personal.subject)
            data[field] = self.keys.seal(ctx.tenant, subject, field, data[field])
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
        if self.keys is not None and any(is_sealed(v) for v in data.values()):
            # The owning service's aggregates see their personal data (or ERASED).
            data = self.keys.open_data(stored.meta.tenant, data)
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


def _subject(domain_event: Any, field: str, subject_field: str) -> str:
    subject = getattr(domain_event, subject_field)
    if subject is None:
        raise ValueError(f"{type(domain_event).__qualname__}.{field} names no data subject")
    return str(subject)


def _resolve_aggregate(topic: str) -> type[Any]:
    resolved: type[Any] = resolve_topic(topic)
    return resolved
