"""The rule "when a branch merges, its institutions move to the branch it merged into", in
memory: the process manager's handler on the fake unit of work, with the placements read
from the same records the commands wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import msgspec
import pytest

from services.registry.application.close_institution import CloseInstitution
from services.registry.application.close_unit import CloseUnit
from services.registry.application.merge_unit import MergeUnit
from services.registry.application.open_unit import OpenUnit
from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from services.registry.domain.organisation_unit import (
    OrganisationUnit,
    UnitKind,
    UnitStatus,
    unit_id,
)
from services.registry.process_managers.when_unit_merged_move_institutions import (
    WhenUnitMergedMoveInstitutions,
)
from shared.db.pool import DbConnection
from shared.eventstore.context import CommandContext
from shared.eventstore.envelope import EventEnvelope, EventMeta
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import MessageBus
from tests.unit.fakes import MemoryStore, memory_bus

TENANT = "35"
# The rule reads placements from the store, not from a connection.
NO_CONNECTION = cast(DbConnection, None)


class MemoryPlacements:
    """Where units and institutions stand, read from the fake store's records."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def _records(self, kind: type[Any]) -> list[Any]:
        return [
            r for (t, _), r in self.store.records.items() if t == TENANT and isinstance(r, kind)
        ]

    def _unit(self, kind: UnitKind, code: str) -> OrganisationUnit | None:
        found = self.store.records.get((TENANT, unit_id(kind, code)))
        return found if isinstance(found, OrganisationUnit) else None

    async def unit(self, unit: UUID) -> tuple[UnitKind, str] | None:
        found = self.store.records.get((TENANT, unit))
        return (found.kind, found.code) if isinstance(found, OrganisationUnit) else None

    async def survivor(self, kind: UnitKind, code: str) -> str | None:
        found = self._unit(kind, code)
        while found is not None and found.merged_into is not None:
            found = self._unit(kind, found.merged_into)
        return found.code if found is not None and found.status is UnitStatus.OPEN else None

    async def institutions_under(self, kind: UnitKind, code: str) -> list[UUID]:
        codes = {code}
        units = self._records(OrganisationUnit)
        while grown := {u.code for u in units if u.kind is kind and u.merged_into in codes} - codes:
            codes |= grown
        return sorted(
            i.id
            for i in self._records(Institution)
            if i.owner is Owner.of_unit(kind)
            and i.unit in codes
            and i.status is not InstitutionStatus.CLOSED
        )

    async def branch_of(self, institution_id: UUID) -> tuple[UnitKind, str] | None:
        found = self.store.records[(TENANT, institution_id)]
        assert isinstance(found, Institution)
        if found.unit is None or found.status is InstitutionStatus.CLOSED:
            return None
        return found.owner.branch_unit, found.unit


@pytest.fixture
async def bus(store: MemoryStore) -> MessageBus:
    """PDM Kota Surabaya with its branches Karang Pilang, Wiyung and Gubeng."""
    bus = memory_bus("services.registry.application", store)
    await run(bus, OpenUnit(kind=UnitKind.PDM, code="3578", name="PDM Kota Surabaya"))
    for code, name in (("357801", "Karang Pilang"), ("357802", "Wiyung"), ("357803", "Gubeng")):
        await run(bus, OpenUnit(kind=UnitKind.PCM, code=code, name=f"PCM {name}"))
    return bus


@pytest.fixture
def rule(bus: MessageBus, store: MemoryStore) -> WhenUnitMergedMoveInstitutions:
    return WhenUnitMergedMoveInstitutions(bus, lambda conn: MemoryPlacements(store))


async def run(bus: MessageBus, command: Command) -> UUID:
    ctx = CommandContext(tenant=TENANT, actor="admin", correlation_id="merging")
    return msgspec.json.decode((await bus.execute(command, ctx)).reply, type=Accepted).id


async def institution(bus: MessageBus, unit: str, owner: Owner = Owner.MUHAMMADIYAH) -> UUID:
    return await run(
        bus,
        RegisterInstitution(
            name="LKSA Muhammadiyah", kind=InstitutionType.LKSA, pdm="3578", unit=unit, owner=owner
        ),
    )


def envelope_of(store: MemoryStore, event: Any) -> EventEnvelope:
    """The event as the projection runner hands it to the rule."""
    position = store.events_of(TENANT).index(event) + 1
    return EventEnvelope(
        service="registry",
        tenant=TENANT,
        position=position,
        previous_position=position - 1,
        aggregate=type(event).__qualname__.split(".")[0],
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        event=type(event).__name__,
        event_version=1,
        occurred_at=datetime.now(UTC),
        meta=EventMeta(tenant=TENANT, actor="admin", correlation_id="merging", reason="pleno"),
        data={},
    )


async def deliver(rule: WhenUnitMergedMoveInstitutions, store: MemoryStore, event: Any) -> None:
    await rule.on(event, NO_CONNECTION, envelope_of(store, event))


def last(store: MemoryStore, kind: type[Any]) -> Any:
    return [e for e in store.events_of(TENANT) if isinstance(e, kind)][-1]


def unit_of(store: MemoryStore, institution_id: UUID) -> str | None:
    found = store.records[(TENANT, institution_id)]
    assert isinstance(found, Institution)
    return found.unit


async def merge(bus: MessageBus, code: str, into: str, kind: UnitKind = UnitKind.PCM) -> None:
    await run(bus, MergeUnit(unit_id=unit_id(kind, code), into=into, reason="Keputusan pleno"))


async def test_a_merged_branchs_open_institutions_move_once_however_often_it_is_delivered(
    bus: MessageBus, store: MemoryStore, rule: WhenUnitMergedMoveInstitutions
) -> None:
    homes = [await institution(bus, "357801") for _ in range(2)]
    closed = await institution(bus, "357801")
    await run(bus, CloseInstitution(institution_id=closed, reason="Dibubarkan"))
    elsewhere = await institution(bus, "357803")
    await merge(bus, "357801", into="357802")
    merged = last(store, OrganisationUnit.Merged)

    before = len(store.events)
    await deliver(rule, store, merged)
    moves = [e for e in store.events_of(TENANT)[before:] if isinstance(e, Institution.MovedToUnit)]
    assert sorted(e.originator_id for e in moves) == sorted(homes)
    assert {e.unit for e in moves} == {"357802"}
    assert [unit_of(store, i) for i in homes] == ["357802", "357802"]
    # A closed institution stays where it was closed, and other branches are untouched.
    assert (unit_of(store, closed), unit_of(store, elsewhere)) == ("357801", "357803")
    # Caused by the merge, keys and all: a redelivery records nothing more.
    assert {key.split(":")[1] for _, key in store.keys} == {envelope_of(store, merged).message_id}
    after = len(store.events)
    await deliver(rule, store, merged)
    assert len(store.events) == after


async def test_the_other_trees_institutions_and_a_pdm_merge_move_nothing(
    bus: MessageBus, store: MemoryStore, rule: WhenUnitMergedMoveInstitutions
) -> None:
    await run(bus, OpenUnit(kind=UnitKind.PDA, code="3578", name="PDA Kota Surabaya"))
    await run(bus, OpenUnit(kind=UnitKind.PCA, code="357801", name="PCA Karang Pilang"))
    aisyiyah = await institution(bus, "357801", Owner.AISYIYAH)
    muhammadiyah = await institution(bus, "357801")
    await merge(bus, "357801", into="357802")
    await deliver(rule, store, last(store, OrganisationUnit.Merged))
    # The PCA of the same code did not merge: 'Aisyiyah's institution stays under it.
    assert (unit_of(store, aisyiyah), unit_of(store, muhammadiyah)) == ("357801", "357802")

    await run(bus, OpenUnit(kind=UnitKind.PDM, code="3573", name="PDM Kota Malang"))
    await merge(bus, "3578", into="3573", kind=UnitKind.PDM)
    before = len(store.events)
    await deliver(rule, store, last(store, OrganisationUnit.Merged))
    assert len(store.events) == before


async def test_institutions_follow_a_chain_of_merges_and_stay_when_it_ends_closed(
    bus: MessageBus, store: MemoryStore, rule: WhenUnitMergedMoveInstitutions
) -> None:
    home = await institution(bus, "357801")
    await merge(bus, "357801", into="357802")
    first = last(store, OrganisationUnit.Merged)
    await merge(bus, "357802", into="357803")
    # Delivered late, the first merge moves the institution where the chain ends.
    await deliver(rule, store, first)
    assert unit_of(store, home) == "357803"

    stranded = await institution(bus, "357803")
    await run(bus, OpenUnit(kind=UnitKind.PCM, code="357804", name="PCM Sukomanunggal"))
    await merge(bus, "357803", into="357804")
    second = last(store, OrganisationUnit.Merged)
    await run(bus, CloseUnit(unit_id=unit_id(UnitKind.PCM, "357804"), reason="Dibubarkan"))
    before = len(store.events)
    await deliver(rule, store, second)
    assert len(store.events) == before
    assert unit_of(store, stranded) == "357803"


async def test_an_institution_placed_as_its_branch_merged_follows_the_merge(
    bus: MessageBus, store: MemoryStore, rule: WhenUnitMergedMoveInstitutions
) -> None:
    # Its placement was checked while the branch was open; the merge committed first.
    home = await institution(bus, "357801")
    await merge(bus, "357801", into="357802")
    registered = next(
        e
        for e in store.events_of(TENANT)
        if isinstance(e, Institution.Registered) and e.originator_id == home
    )
    await deliver(rule, store, registered)
    assert unit_of(store, home) == "357802"
    moved = last(store, Institution.MovedToUnit)
    # Its own move is to an open branch: nothing more follows.
    before = len(store.events)
    await deliver(rule, store, moved)
    assert len(store.events) == before
