"""Stable event names: what is stored is `Aggregate.Event`, never a Python module path.

Moving or renaming a module therefore never breaks replay. The catalogue is also the list of
published events (name, version, fields) that other systems read.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

# Fields every eventsourcing event has; they travel outside the event's own data.
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "originator_topic", "timestamp"}


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
                self._hints[value] = typing.get_type_hints(value)

    def name_of(self, event_cls: type[Any]) -> str:
        try:
            return self._by_class[event_cls]
        except KeyError:
            raise KeyError(
                f"event class {event_cls.__qualname__} is not in the catalogue"
            ) from None

    def class_of(self, name: str) -> type[Any]:
        return self._by_name[name]

    def aggregate_name(self, aggregate_cls: type[Aggregate]) -> str:
        return self._aggregate_names[aggregate_cls]

    def aggregate_class(self, name: str) -> type[Aggregate]:
        return self._aggregate_by_name[name]

    def field_types(self, event_cls: type[Any]) -> dict[str, Any]:
        return self._hints[event_cls]

    def contract(self) -> dict[str, EventContract]:
        """Each published event's current version and the JSON Schema of each of its fields
        (enum values, formats and all): what a consumer of the event relies on."""
        contracts: dict[str, EventContract] = {}
        for name, cls in sorted(self._by_name.items()):
            fields = {
                k: msgspec.json.schema(t)
                for k, t in self._hints[cls].items()
                if k not in _ENVELOPE_FIELDS and not str(t).startswith("typing.ClassVar")
            }
            contracts[name] = EventContract(getattr(cls, "class_version", 1), fields)
        return contracts

    def specs(self) -> list[EventSpec]:
        specs = []
        for name, cls in sorted(self._by_name.items()):
            fields = {
                k: getattr(t, "__name__", str(t))
                for k, t in self._hints[cls].items()
                if k not in _ENVELOPE_FIELDS and not str(t).startswith("typing.ClassVar")
            }
            specs.append(EventSpec(name, getattr(cls, "class_version", 1), fields))
        return specs


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
