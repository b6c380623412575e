"""Stable event names: what is stored is `Aggregate.Event`, never a Python module path.

Moving or renaming a module therefore never breaks replay. The catalogue is also the list of
published events (name, version, fields) that other systems read, and the one place that
reads a stored event: it upcasts old versions (for loading aggregates and for every reader of
the logs alike) and decodes the fields to their declared types.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from shared.personal.fields import WITHHELD, Personal, Sealed, is_sealed, personal_fields

# Fields every eventsourcing event has; they travel outside the event's own data.
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "originator_topic", "timestamp"}


class UnreadableEvent(ValueError):
    """A stored event this code cannot read: an unknown name, a version newer than the
    code's, or data that does not fit the event's fields."""


class EventSpec(msgspec.Struct, frozen=True):
    name: str
    version: int
    fields: dict[str, str]


class EventContract(msgspec.Struct, frozen=True):
    version: int
    fields: dict[str, Any]


class EventCatalogue:
    def __init__(self, aggregates: Iterable[tuple[str, type[Aggregate]]] = ()) -> None:
        self._by_name: dict[str, type[Any]] = {}
        self._by_class: dict[type[Any], str] = {}
        self._aggregate_by_name: dict[str, type[Aggregate]] = {}
        self._aggregate_names: dict[type[Aggregate], str] = {}
        self._hints: dict[type[Any], dict[str, Any]] = {}
        self._fields: dict[type[Any], dict[str, Any]] = {}
        self._personal: dict[type[Any], dict[str, Personal]] = {}
        for name, cls in aggregates:
            self.register(name, cls)

    def register(self, aggregate_name: str, aggregate_cls: type[Aggregate]) -> None:
        if "." in aggregate_name:
            raise ValueError(f"aggregate name {aggregate_name!r} must not contain a dot")
        self._aggregate_by_name[aggregate_name] = aggregate_cls
        self._aggregate_names[aggregate_cls] = aggregate_name
        for attr, value in vars(aggregate_cls).items():
            # The library adds a default `Created` class when __init__ names its own event.
            if attr in {"Event", "Created"} and attr not in _declared_events(aggregate_cls):
                continue
            if isinstance(value, type) and issubclass(value, aggregate_cls.Event):
                stable = f"{aggregate_name}.{attr}"
                self._by_name[stable] = value
                self._by_class[value] = stable
                hints = typing.get_type_hints(value)
                self._hints[value] = hints
                self._fields[value] = {
                    k: t
                    for k, t in hints.items()
                    if k not in _ENVELOPE_FIELDS and not str(t).startswith("typing.ClassVar")
                }
                self._personal[value] = personal_fields(value)

    def name_of(self, event_cls: type[Any]) -> str:
        try:
            return self._by_class[event_cls]
        except KeyError:
            raise KeyError(
                f"event class {event_cls.__qualname__} is not in the catalogue"
            ) from None

    def personal_of(self, event_cls: type[Any]) -> dict[str, Personal]:
        """The event's personal fields, each with where its data subject's id is."""
        return self._personal.get(event_cls, {})

    def class_of(self, name: str) -> type[Any]:
        return self._by_name[name]

    def names_of(self, kinds: Iterable[type[Any]]) -> frozenset[str]:
        """The stable names of the events that are instances of any of `kinds` (an event
        class, or a base such as `Institution.Event` for all of an aggregate's)."""
        names: set[str] = set()
        for kind in kinds:
            matching = {name for name, cls in self._by_name.items() if issubclass(cls, kind)}
            if not matching:
                raise KeyError(f"no event in the catalogue is a {kind.__qualname__}")
            names |= matching
        return frozenset(names)

    def aggregate_name(self, aggregate_cls: type[Aggregate]) -> str:
        return self._aggregate_names[aggregate_cls]

    def aggregate_class(self, name: str) -> type[Aggregate]:
        return self._aggregate_by_name[name]

    def upcast(
        self, name: str, version: int, data: Mapping[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """The fields of event `name` stored as `version`, as its current version has them
        (returned with that version). Released events never change meaning: old versions
        are upgraded on read, by the event class's `upcast_v<n>_v<n+1>` steps."""
        try:
            cls = self._by_name[name]
        except KeyError:
            raise UnreadableEvent(f"{name} is not in the catalogue") from None
        current = _version(cls)
        if version > current:
            raise UnreadableEvent(f"{name} v{version} is newer than this code (v{current})")
        state = dict(data)
        while version < current:
            getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        return current, state

    def decode(
        self,
        name: str,
        version: int,
        data: Mapping[str, Any],
        *,
        originator_id: UUID,
        originator_version: int,
        timestamp: datetime | str,
    ) -> Any:
        """The event object of a stored event: upcast, and each field converted to its
        declared type (a plain JSON round trip would turn datetimes, UUIDs and Decimals
        into strings)."""
        current, state = self.upcast(name, version, data)
        cls = self._by_name[name]
        decoded: dict[str, Any] = {}
        personal = self._personal[cls]
        for key, declared in self._fields[cls].items():
            if key not in state:
                raise UnreadableEvent(f"{name} v{current} has no field {key!r}")
            if key in personal and is_sealed(state[key]):
                # A reader that may not open it (another service): neither the plaintext
                # nor the ciphertext in a typed field.
                decoded[key] = WITHHELD
                continue
            try:
                decoded[key] = msgspec.convert(state[key], declared, strict=False)
            except msgspec.ValidationError as exc:
                raise UnreadableEvent(f"{name} v{current} field {key!r}: {exc}") from exc
        decoded["timestamp"] = msgspec.convert(timestamp, datetime, strict=False)
        decoded["originator_id"] = originator_id
        decoded["originator_version"] = originator_version
        if "originator_topic" in self._hints[cls]:
            aggregate = self._aggregate_by_name[name.partition(".")[0]]
            decoded["originator_topic"] = get_topic(aggregate)
        # As the library's own mapper builds events (frozen dataclasses): without __init__,
        # whose checks the event passed when it was recorded.
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", decoded)
        return event

    def contract(self) -> dict[str, EventContract]:
        """Each published event's current version and the JSON Schema of each of its fields
        (enum values, formats and all): what a consumer of the event relies on. A personal
        field is published sealed (`shared.personal`): its schema says so, and names the
        field holding its data subject."""
        return {
            name: EventContract(
                _version(cls),
                {k: self._field_schema(cls, k, t) for k, t in self._fields[cls].items()},
            )
            for name, cls in sorted(self._by_name.items())
        }

    def _field_schema(self, cls: type[Any], field: str, declared: Any) -> dict[str, Any]:
        personal = self._personal[cls].get(field)
        if personal is None:
            return msgspec.json.schema(declared)
        sealed = msgspec.json.schema(Sealed | None if declared == str | None else Sealed)
        return sealed | {"x-personal": {"subject": personal.subject}}

    def specs(self) -> list[EventSpec]:
        return [
            EventSpec(
                name,
                _version(cls),
                {k: getattr(t, "__name__", str(t)) for k, t in self._fields[cls].items()},
            )
            for name, cls in sorted(self._by_name.items())
        ]


def _version(event_cls: type[Any]) -> int:
    version: int = getattr(event_cls, "class_version", 1)
    return version


def _declared_events(aggregate_cls: type[Aggregate]) -> set[str]:
    """Names of events whose class the aggregate really triggers (decorated methods)."""
    names: set[str] = set()
    for value in vars(aggregate_cls).values():
        decorator = getattr(value, "event_cls_name", None) or getattr(
            getattr(value, "event_decorator", None), "event_cls_name", None
        )
        if isinstance(decorator, str):
            names.add(decorator)
    return names
