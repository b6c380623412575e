"""Organisation units and where institutions sit, in memory: each refusal names its field
and records nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
import pytest

from services.registry.application.close_unit import CloseUnit
from services.registry.application.merge_unit import MergeUnit
from services.registry.application.move_institution import MoveInstitution
from services.registry.application.open_unit import OpenUnit
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.rename_unit import RenameUnit
from services.registry.domain.institution import Institution, InstitutionType, Owner
from services.registry.domain.organisation_unit import UnitKind, UnitStatus, unit_id
from shared.domain.errors import Conflict, DomainError, OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.context import CommandContext
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import MessageBus
from tests.unit.fakes import MemoryStore, memory_bus

TENANT = "35"
REASON = "Keputusan rapat pleno 12/2026"


@pytest.fixture
def bus(store: MemoryStore) -> MessageBus:
    return memory_bus("services.registry.application", store)


async def run(bus: MessageBus, command: Command, scope: Scope = PROVINCE) -> UUID:
    ctx = CommandContext(tenant=TENANT, actor="officer", correlation_id="c", scope=scope)
    outcome = await bus.execute(command, ctx)
    return msgspec.json.decode(outcome.reply, type=Accepted).id


async def refused(
    bus: MessageBus,
    store: MemoryStore,
    command: Command,
    error: type[DomainError] = RuleBroken,
    scope: Scope = PROVINCE,
) -> DomainError:
    before = len(store.events)
    with pytest.raises(error) as raised:
        await run(bus, command, scope)
    assert len(store.events) == before
    return raised.value


def opening(kind: UnitKind, code: str, name: str = "PDM Kota Surabaya") -> OpenUnit:
    return OpenUnit(kind=kind, code=code, name=name)


def registration(**fields: Any) -> RegisterInstitution:
    return RegisterInstitution(
        name="LKSA Muhammadiyah Wiyung", kind=InstitutionType.LKSA, **({"pdm": "3578"} | fields)
    )


async def test_a_unit_is_identified_by_its_kind_and_code(
    bus: MessageBus, store: MemoryStore
) -> None:
    pdm = await run(bus, opening(UnitKind.PDM, "3578"))
    assert pdm == unit_id(UnitKind.PDM, "3578")
    # The 'Aisyiyah council of the same city is another unit with the same code.
    assert await run(bus, opening(UnitKind.PDA, "3578", "PDA Kota Surabaya")) != pdm
    conflict = await refused(bus, store, opening(UnitKind.PDM, "3578"), Conflict)
    assert conflict.field == "code"
    assert "already recorded" in conflict.detail


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (UnitKind.PDM, "3171"),
        (UnitKind.PDM, "357801"),
        (UnitKind.PCM, "3578"),
        (UnitKind.PCM, "317101"),
    ],
)
async def test_a_unit_code_lies_in_the_province(
    bus: MessageBus, store: MemoryStore, kind: UnitKind, code: str
) -> None:
    await run(bus, opening(UnitKind.PDM, "3578"))
    assert (await refused(bus, store, opening(kind, code))).field == "code"


async def test_a_branch_opens_only_under_its_open_regency_unit(
    bus: MessageBus, store: MemoryStore
) -> None:
    error = await refused(bus, store, opening(UnitKind.PCM, "357801", "PCM Karang Pilang"))
    assert (error.field, "open it first" in error.detail) == ("code", True)
    pdm = await run(bus, opening(UnitKind.PDM, "3578"))
    branch = await run(bus, opening(UnitKind.PCM, "357801", "PCM Karang Pilang"))
    assert branch == unit_id(UnitKind.PCM, "357801")
    # A PCA sits under the PDA, not the PDM.
    assert (await refused(bus, store, opening(UnitKind.PCA, "357801", "PCA K"))).field == "code"
    await run(bus, CloseUnit(unit_id=pdm, reason=REASON))
    assert (
        await refused(bus, store, opening(UnitKind.PCM, "357802", "PCM Jambangan"))
    ).field == "code"


async def test_a_pdm_operator_governs_the_branches_of_its_pdm_only(
    bus: MessageBus, store: MemoryStore
) -> None:
    operator = Scope(pdm="3578")
    await refused(bus, store, opening(UnitKind.PDM, "3578"), OutOfScope, operator)
    await run(bus, opening(UnitKind.PDM, "3578"))
    await run(bus, opening(UnitKind.PDM, "3573", "PDM Kota Malang"))
    branch = await run(bus, opening(UnitKind.PCM, "357801", "PCM Karang Pilang"), operator)
    await run(bus, RenameUnit(unit_id=branch, name="PCM Karang Pilang Surabaya"), operator)
    await refused(
        bus, store, opening(UnitKind.PCM, "357301", "PCM Kedungkandang"), OutOfScope, operator
    )
    pdm = unit_id(UnitKind.PDM, "3578")
    await refused(bus, store, CloseUnit(unit_id=pdm, reason=REASON), OutOfScope, operator)


async def test_merging_into_itself_another_regency_or_a_closed_unit_is_refused(
    bus: MessageBus, store: MemoryStore
) -> None:
    await run(bus, opening(UnitKind.PDM, "3578"))
    await run(bus, opening(UnitKind.PDM, "3573", "PDM Kota Malang"))
    a = await run(bus, opening(UnitKind.PCM, "357801", "PCM Karang Pilang"))
    b = await run(bus, opening(UnitKind.PCM, "357802", "PCM Jambangan"))
    c = await run(bus, opening(UnitKind.PCM, "357803", "PCM Gayungan"))
    await run(bus, opening(UnitKind.PCM, "357301", "PCM Kedungkandang"))
    for into in ("357801", "357301", "357899"):
        assert (
            await refused(bus, store, MergeUnit(unit_id=a, into=into, reason=REASON))
        ).field == "into"
    await run(bus, CloseUnit(unit_id=c, reason=REASON))
    closed = await refused(bus, store, MergeUnit(unit_id=a, into="357803", reason=REASON))
    assert (closed.field, "closed" in closed.detail) == ("into", True)
    await run(bus, MergeUnit(unit_id=a, into="357802", reason=REASON))
    # A merged unit changes no more, and nothing merges into it.
    for change in (
        RenameUnit(unit_id=a, name="PCM Baru"),
        CloseUnit(unit_id=a, reason=REASON),
        MergeUnit(unit_id=a, into="357802", reason=REASON),
    ):
        assert (await refused(bus, store, change)).field == "status"
    assert (
        await refused(bus, store, MergeUnit(unit_id=b, into="357801", reason=REASON))
    ).field == "into"
    merged = store.records[(TENANT, a)]
    assert (merged.status, merged.merged_into) == (UnitStatus.MERGED, "357802")  # type: ignore[attr-defined]


async def test_an_institution_registers_with_just_its_pdm_recorded_or_not(
    bus: MessageBus, store: MemoryStore
) -> None:
    await run(bus, registration())
    [event] = store.events_of(TENANT)
    assert isinstance(event, Institution.Registered)
    assert event.unit is None
    pdm = await run(bus, opening(UnitKind.PDM, "3578"))
    await run(bus, registration())
    await run(bus, CloseUnit(unit_id=pdm, reason=REASON))
    assert (await refused(bus, store, registration())).field == "pdm"
    # An 'Aisyiyah institution sits in the PDA of the city, which is open (never recorded).
    await run(bus, registration(owner=Owner.AISYIYAH))


async def test_an_institution_sits_only_under_an_open_branch_of_its_pdm(
    bus: MessageBus, store: MemoryStore
) -> None:
    await run(bus, opening(UnitKind.PDM, "3578"))
    await run(bus, opening(UnitKind.PDM, "3573", "PDM Kota Malang"))
    a = await run(bus, opening(UnitKind.PCM, "357801", "PCM Karang Pilang"))
    await run(bus, opening(UnitKind.PCM, "357802", "PCM Jambangan"))
    await run(bus, opening(UnitKind.PCM, "357301", "PCM Kedungkandang"))
    for unit in ("357301", "357809"):
        assert (await refused(bus, store, registration(unit=unit))).field == "unit"
    # The branch kind follows the owner: no PCA 357801 is recorded.
    error = await refused(bus, store, registration(unit="357801", owner=Owner.AISYIYAH))
    assert (error.field, "PCA" in error.detail) == ("unit", True)
    institution = await run(bus, registration(unit="357801"))
    assert store.records[(TENANT, institution)].unit == "357801"  # type: ignore[attr-defined]

    await run(bus, MergeUnit(unit_id=a, into="357802", reason=REASON))
    assert (await refused(bus, store, registration(unit="357801"))).field == "unit"
    # After the merge its institutions are moved to the branch it merged into.
    move = MoveInstitution(institution_id=institution, unit="357802", reason=REASON)
    await run(bus, move)
    assert store.records[(TENANT, institution)].unit == "357802"  # type: ignore[attr-defined]
    for unit in ("357801", "357301"):
        bad = MoveInstitution(institution_id=institution, unit=unit, reason=REASON)
        assert (await refused(bus, store, bad)).field == "unit"
    await run(bus, MoveInstitution(institution_id=institution, unit=None, reason=REASON))
    assert store.records[(TENANT, institution)].unit is None  # type: ignore[attr-defined]


def test_an_institution_registered_before_units_reads_as_directly_under_its_pdm() -> None:
    catalogue = EventCatalogue([("Institution", Institution)])
    v1 = {"name": "LKSA", "kind": "lksa", "owner": "muhammadiyah", "pdm": "3578", "address": None}
    version, data = catalogue.upcast("Institution.Registered", 1, v1)
    assert (version, data["unit"]) == (2, None)
