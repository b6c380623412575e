"""Every reader of a log gets events typed and at their current version: the catalogue
upcasts a stored row once for all readers (relay, events feed, projections, consumers) and
decodes it into the event class, and a reader is handed only the types it registers."""

from __future__ import annotations

import inspect
from datetime import datetime
from functools import singledispatchmethod
from typing import Any, cast
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.domain import AggregateCreated

from services.bootstrap import SERVICES
from services.cases.domain.complaint import Channel, Complaint
from services.hr.domain.social_worker import SocialWorker
from services.registry.domain.institution import Institution, InstitutionType
from shared.db.pool import DbConnection
from shared.eventstore.catalogue import EventCatalogue, UnreadableEvent
from shared.eventstore.envelope import EventEnvelope, EventMeta, StoredState, envelope_from_row
from shared.projections.dispatch import Dispatch, typed

CASES = EventCatalogue([("Complaint", Complaint)])
REGISTRY = EventCatalogue([("Institution", Institution)])
NO_CONNECTION = cast(DbConnection, object())
COMPLAINT_V1: dict[str, Any] = {
    "channel": "whatsapp",
    "summary": "Anak asuh tidak mendapat jadwal sekolah.",
    "concerns_child": True,
    "institution_id": "0b7c2a36-5d0e-4f57-9a43-3f0f5a3c4b11",
}


def row(
    catalogue: EventCatalogue, topic: str, version: int, data: dict[str, Any], position: int = 1
) -> EventEnvelope:
    """An event as a tenant log stores it, read back as TenantLogs reads it."""
    state = StoredState(
        v=version,
        meta=EventMeta(tenant="35", actor="officer-35", correlation_id="c-1"),
        data={"timestamp": "2025-03-01T08:30:00+00:00", "originator_topic": "x", **data},
    )
    return envelope_from_row(
        service="test",
        tenant="35",
        position=position,
        previous_position=None,
        aggregate_id=uuid4(),
        aggregate_version=1,
        topic=topic,
        state=msgspec.json.encode(state),
        catalogue=catalogue,
    )


def test_a_v1_complaint_is_read_as_v3_with_its_fields_typed() -> None:
    envelope = row(CASES, "Complaint.Received", 1, COMPLAINT_V1)
    # What the relay publishes and the feed serves: the current version.
    assert (envelope.event_version, envelope.data["pdm"]) == (3, None)
    assert envelope.data["complainant_subject"] is None
    assert envelope.data["complainant_name"] is None
    assert envelope.data["summary"] == COMPLAINT_V1["summary"]

    event = typed(CASES, envelope)
    assert isinstance(event, Complaint.Received)
    assert event.pdm is None
    assert event.channel is Channel.WHATSAPP
    assert event.institution_id == UUID(COMPLAINT_V1["institution_id"])
    assert event.timestamp == envelope.occurred_at
    assert isinstance(event.timestamp, datetime)
    assert (event.originator_id, event.originator_version) == (envelope.aggregate_id, 1)


def test_an_event_newer_than_the_code_goes_out_as_stored_and_is_refused_when_decoded() -> None:
    envelope = row(CASES, "Complaint.Received", 4, {**COMPLAINT_V1, "pdm": "3501", "new": 1})
    assert envelope.event_version == 4
    assert envelope.data["new"] == 1
    with pytest.raises(UnreadableEvent, match=r"Complaint.Received v4 is newer than this code"):
        typed(CASES, envelope)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"channel": "fax", "summary": "s", "concerns_child": False, "institution_id": None},
         "field 'channel'"),
        ({"channel": "web", "concerns_child": False, "institution_id": None},
         "has no field 'summary'"),
    ],
)  # fmt: skip
def test_an_event_whose_fields_do_not_fit_is_refused(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(UnreadableEvent, match=problem):
        typed(CASES, row(CASES, "Complaint.Received", 1, data))


class SuspensionsOnly:
    """A reader of two of the registry's events, recording what it is handed."""

    name = "suspensions"

    def __init__(self) -> None:
        self.seen: list[tuple[object, int]] = []

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        raise AssertionError(f"handed an event it does not read: {event!r}")

    @on.register
    async def _(
        self, event: Institution.Suspended, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        self.seen.append((event, envelope.position))

    @on.register
    async def _(
        self, event: Institution.Renamed, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        self.seen.append((event.name, envelope.position))


async def test_a_reader_is_handed_only_the_events_it_registers_typed() -> None:
    reader = SuspensionsOnly()
    dispatch = Dispatch(reader, REGISTRY)
    assert dispatch.names == {"Institution.Suspended", "Institution.Renamed"}

    # Not read, so not even decoded: this one could not be.
    await dispatch.deliver(NO_CONNECTION, row(REGISTRY, "Institution.Registered", 1, {}, 1))
    await dispatch.deliver(NO_CONNECTION, row(REGISTRY, "Institution.Renamed", 1, {"name": "B"}, 2))
    await dispatch.deliver(NO_CONNECTION, row(REGISTRY, "Institution.Suspended", 1, {}, 3))

    assert reader.seen[0] == ("B", 2)
    suspended, position = reader.seen[1]
    assert isinstance(suspended, Institution.Suspended)
    assert position == 3
    assert len(reader.seen) == 2


async def test_a_reader_is_handed_text_postgresql_can_store() -> None:
    reader = SuspensionsOnly()
    renamed = row(REGISTRY, "Institution.Renamed", 1, {"name": "Panti \x00 Asuhan"})
    await Dispatch(reader, REGISTRY).deliver(NO_CONNECTION, renamed)
    assert reader.seen == [("Panti \ufffd Asuhan", 1)]


def test_registering_a_base_class_reads_all_of_an_aggregates_events() -> None:
    assert REGISTRY.names_of([Institution.Event]) == {spec.name for spec in REGISTRY.specs()}


def test_a_reader_of_events_its_log_does_not_hold_is_refused() -> None:
    class WorkersOnly:
        name = "workers"

        @singledispatchmethod
        async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
            """Nothing else."""

        @on.register
        async def _(
            self, event: SocialWorker.Registered, conn: DbConnection, envelope: EventEnvelope
        ) -> None:
            """Would never be called: the registry's log holds no workers."""

    with pytest.raises(KeyError, match=r"no event in the catalogue is a SocialWorker.Registered"):
        Dispatch(WorkersOnly(), REGISTRY)


def test_typed_fields_keep_their_enum_types() -> None:
    registered = row(
        REGISTRY,
        "Institution.Registered",
        1,
        {"name": "LKSA", "kind": "lksa", "owner": "aisyiyah", "pdm": "3501", "address": None},
    )
    event = typed(REGISTRY, registered)
    assert isinstance(event, Institution.Registered)
    assert event.kind is InstitutionType.LKSA


def _changes() -> list[tuple[type[Any], type[Any]]]:
    """(aggregate, event class) of every event every service declares, but creation
    events (applied by the aggregate's __init__)."""
    found = []
    for declared in SERVICES.values():
        catalogue = EventCatalogue(declared.define().aggregates)
        for spec in catalogue.specs():
            event_cls = catalogue.class_of(spec.name)
            if not issubclass(event_cls, AggregateCreated):
                aggregate = catalogue.aggregate_class(spec.name.partition(".")[0])
                found.append((aggregate, event_cls))
    return found


@pytest.mark.parametrize(("aggregate", "event_cls"), _changes(), ids=lambda c: c.__qualname__)
def test_every_event_but_creation_changes_its_aggregate_through_apply(
    aggregate: type[Any], event_cls: type[Any]
) -> None:
    """An event class without an `@apply.register` would be recorded and change nothing."""
    getattr(aggregate, "apply")  # noqa: B009  (completes the deferred registrations)
    registry = inspect.getattr_static(aggregate, "apply").dispatcher.registry
    assert event_cls in registry, f"{event_cls.__qualname__} has no apply"
