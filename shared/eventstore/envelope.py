"""The one shape of an event outside its aggregate: stored state, NATS payload, events feed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from shared.eventstore.catalogue import EventCatalogue

log = logging.getLogger(__name__)


class EventMeta(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    actor: str
    correlation_id: str
    causation_id: str | None = None
    reason: str | None = None
    command_id: UUID | None = None


class StoredState(msgspec.Struct, frozen=True, kw_only=True):
    """What goes into the event store's `state` column (JSON)."""

    v: int
    meta: EventMeta
    data: dict[str, Any]


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """An event as other services, auditors and other systems see it."""

    service: str
    tenant: str
    position: int
    previous_position: int | None
    aggregate: str
    aggregate_id: UUID
    aggregate_version: int
    event: str
    event_version: int
    occurred_at: datetime
    meta: EventMeta
    data: dict[str, Any]

    @property
    def message_id(self) -> str:
        """Stable across republishes, so JetStream and consumers can de-duplicate."""
        return f"{self.service}.{self.tenant}.{self.position}"


def envelope_from_row(
    *,
    service: str,
    tenant: str,
    position: int,
    previous_position: int | None,
    aggregate_id: UUID,
    aggregate_version: int,
    topic: str,
    state: bytes,
    catalogue: EventCatalogue,
) -> EventEnvelope:
    """The event as its current version has it (upcast by the catalogue), so that every
    reader — the relay, the events feed, projections, consumers — sees one version."""
    stored = msgspec.json.decode(state, type=StoredState)
    aggregate, _, event = topic.partition(".")
    data = dict(stored.data)
    occurred_at = msgspec.convert(data.pop("timestamp"), datetime, strict=False)
    data.pop("originator_topic", None)
    version = stored.v
    try:
        version, data = catalogue.upcast(topic, version, data)
    except Exception:
        # An event this code cannot read (a newer version, a failing upcaster) goes out as
        # stored: each reader that handles it then fails on it and stalls that tenant
        # only, with the reason, where failing here would stop every tenant of the log.
        log.debug("event %s v%s left as stored", topic, version, exc_info=True)
    return EventEnvelope(
        service=service,
        tenant=tenant,
        position=position,
        previous_position=previous_position,
        aggregate=aggregate,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        event=event,
        event_version=version,
        occurred_at=occurred_at,
        meta=stored.meta,
        data=data,
    )


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def storable(event: EventEnvelope) -> EventEnvelope:
    """The event as a PostgreSQL reader can store it: text cannot hold U+0000, which the
    edge refuses now but older events may carry forever. Readers that write rows (read
    models, reactions) get it as U+FFFD (the replacement character); the log, the feed and
    NATS keep the event as it was recorded."""
    data = _storable(event.data)
    meta = _storable(msgspec.to_builtins(event.meta))
    if data == event.data and meta == msgspec.to_builtins(event.meta):
        return event
    return msgspec.structs.replace(
        event, data=data, meta=msgspec.convert(meta, EventMeta, strict=False)
    )
