"""A published event's meaning never changes: its fields (names, types, enum values) are the
contract other services, other systems and auditors rely on, forever. Changing them needs a
new version of the event (and an upcaster for the old one), never an edit in place.

`tests/contracts/events.json` records every released version of every event. The test fails
when the code's events differ from it: a changed version is refused outright; a new event or
version is recorded there, so that it shows in review, with
`MPKS_UPDATE_CONTRACTS=1 make test ARGS=tests/unit/kernel/test_event_contracts.py`.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from services.bootstrap import SERVICES
from shared.eventstore.catalogue import EventCatalogue

CONTRACTS = Path(__file__).parents[2] / "contracts" / "events.json"
# service -> event -> version -> field -> JSON Schema
Released = dict[str, dict[str, dict[str, dict[str, Any]]]]
# service -> event -> (version, field -> JSON Schema)
Current = dict[str, dict[str, tuple[int, dict[str, Any]]]]


def current() -> Current:
    return {
        service: {
            name: (c.version, c.fields)
            for name, c in EventCatalogue(declared.define().aggregates).contract().items()
        }
        for service, declared in sorted(SERVICES.items())
    }


def compare(released: Released, now: Current) -> tuple[list[str], Released]:
    """What breaks the contract, and what is new (to be recorded)."""
    problems: list[str] = []
    new: Released = {}
    for service, events in now.items():
        for name, (version, fields) in events.items():
            versions = released.get(service, {}).get(name, {})
            if str(version) in versions:
                if versions[str(version)] != fields:
                    problems.append(
                        f"{service} {name} v{version} was released with other fields: give "
                        f"the event version {version + 1} and an upcaster instead"
                    )
            elif versions and version < max(int(v) for v in versions):
                problems.append(f"{service} {name} went back to v{version}")
            else:
                new.setdefault(service, {}).setdefault(name, {})[str(version)] = fields
        for name in released.get(service, {}):
            if name not in events:
                problems.append(
                    f"{service} {name} was released and is gone: old events must stay "
                    "readable forever"
                )
    return problems, new


def test_published_events_change_only_by_a_new_version() -> None:
    released: Released = json.loads(CONTRACTS.read_text("utf-8"))
    problems, new = compare(released, current())
    assert not problems, "\n".join(problems)
    if new and os.environ.get("MPKS_UPDATE_CONTRACTS") == "1":
        for service, events in new.items():
            for name, versions in events.items():
                released.setdefault(service, {}).setdefault(name, {}).update(versions)
        CONTRACTS.write_text(json.dumps(released, indent=2, sort_keys=True) + "\n", "utf-8")
        return
    assert not new, (
        f"events not in the released contract yet: {sorted(new)} "
        "(record them with MPKS_UPDATE_CONTRACTS=1, see this module's docstring)"
    )


def test_an_edit_in_place_a_removal_or_a_new_version_is_caught() -> None:
    released: Released = json.loads(CONTRACTS.read_text("utf-8"))
    now = current()

    renamed = copy.deepcopy(now)
    version, fields = renamed["registry"]["Institution.Registered"]
    renamed["registry"]["Institution.Registered"] = (
        version,
        {("title" if k == "name" else k): v for k, v in fields.items()},
    )
    problems, _ = compare(released, renamed)
    assert problems == [
        f"registry Institution.Registered v{version} was released with other fields: give the "
        f"event version {version + 1} and an upcaster instead"
    ]

    gone = copy.deepcopy(now)
    del gone["hr"]["SocialWorker.Registered"]
    assert compare(released, gone)[0] == [
        "hr SocialWorker.Registered was released and is gone: old events must stay readable forever"
    ]

    bumped = copy.deepcopy(now)
    bumped["registry"]["Institution.Renamed"] = (2, {"name": {"type": "string"}, "why": {}})
    problems, new = compare(released, bumped)
    assert problems == []
    assert new == {
        "registry": {"Institution.Renamed": {"2": {"name": {"type": "string"}, "why": {}}}}
    }
