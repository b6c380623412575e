"""An institution's profile and officers in memory: the rules, each refusing naming its
field with nothing recorded, and only what changed recorded."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import msgspec
import pytest

from services.registry.application.appoint_officer import AppointOfficer
from services.registry.application.close_institution import CloseInstitution
from services.registry.application.dismiss_officer import DismissOfficer
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.update_institution_profile import UpdateInstitutionProfile
from services.registry.domain.institution import Institution, InstitutionType
from services.registry.domain.officers import OfficerRole
from services.registry.domain.profile import (
    Address,
    Beneficiaries,
    BeneficiaryReport,
    Contact,
    ServiceKind,
)
from shared.domain.errors import OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.context import CommandContext
from shared.personal.fields import personal_fields
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import MessageBus
from tests.unit.fakes import MemoryStore, memory_bus

TENANT = "35"
TODAY = date(2026, 11, 24)
REASON = "SK PDM Surabaya No. 7/2026"


@pytest.fixture
def bus(store: MemoryStore) -> MessageBus:
    return memory_bus("services.registry.application", store, today=TODAY)


async def run(bus: MessageBus, command: Command, scope: Scope = PROVINCE) -> Accepted:
    ctx = CommandContext(tenant=TENANT, actor="admin", correlation_id="c", scope=scope)
    outcome = await bus.execute(command, ctx)
    return msgspec.json.decode(outcome.reply, type=Accepted)


async def registered(bus: MessageBus) -> UUID:
    command = RegisterInstitution(name="LKSA Wiyung", kind=InstitutionType.LKSA, pdm="3578")
    return (await run(bus, command)).id


def names(store: MemoryStore) -> list[str]:
    return [type(e).__name__ for e in store.events_of(TENANT)]


def appointment(
    institution: UUID, role: OfficerRole, start: date, end: date, **extra: Any
) -> AppointOfficer:
    return AppointOfficer(
        institution_id=institution,
        role=role,
        full_name="Ahmad Fauzi",
        nik="3578010101800001",
        term_start=start,
        term_end=end,
        reason=REASON,
        **extra,
    )


def officers(store: MemoryStore) -> dict[OfficerRole, list[UUID]]:
    found: dict[OfficerRole, list[UUID]] = {}
    for event in store.events_of(TENANT):
        if isinstance(event, Institution.OfficerAppointed):
            found.setdefault(event.role, []).append(event.officer_id)
    return found


async def test_a_profile_update_records_one_event_per_kind_changed_and_none_when_equal(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    update = UpdateInstitutionProfile(
        institution_id=institution,
        address=Address(line="Jl. Raya Menganti 52", regency="3578"),
        capacity=60,
        services=[ServiceKind.RESIDENTIAL_CARE, ServiceKind.EDUCATION],
        contact=Contact(phone="+62 31 766 0000"),
        beneficiaries=BeneficiaryReport(period="2025", counts=Beneficiaries(children=52)),
    )
    assert (await run(bus, update)).version == 6
    assert names(store)[1:] == [
        "AddressChanged",
        "CapacityChanged",
        "ServicesChanged",
        "ContactChanged",
        "BeneficiariesReported",
    ]
    # The same again, the services in another order: nothing to record.
    same = msgspec.structs.replace(
        update, services=[ServiceKind.EDUCATION, ServiceKind.RESIDENTIAL_CARE]
    )
    assert (await run(bus, same)).version == 6
    only_capacity = UpdateInstitutionProfile(institution_id=institution, capacity=45)
    assert (await run(bus, only_capacity)).version == 7
    assert names(store)[-1] == "CapacityChanged"
    institution_now = store.records[(TENANT, institution)]
    assert isinstance(institution_now, Institution)
    assert (institution_now.capacity, institution_now.phone) == (45, "+62 31 766 0000")


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"address": Address(line="Jl. Darmo 1", regency="3171")}, "address.regency"),
        ({"address": Address(line="Jl. Darmo 1", regency="3500")}, "address.regency"),
        ({"address": Address(line="Jl. Darmo 1", regency="3570")}, "address.regency"),
        ({"services": [ServiceKind.HEALTH, ServiceKind.HEALTH]}, "services"),
        (
            {"beneficiaries": BeneficiaryReport(period="2027", counts=Beneficiaries())},
            "beneficiaries.period",
        ),
        (
            {"beneficiaries": BeneficiaryReport(period="2026-12", counts=Beneficiaries())},
            "beneficiaries.period",
        ),
    ],
)
async def test_a_profile_update_breaking_a_rule_records_nothing(
    bus: MessageBus, store: MemoryStore, update: dict[str, Any], field: str
) -> None:
    institution = await registered(bus)
    # A valid part beside the refused one is not recorded either.
    command = UpdateInstitutionProfile(institution_id=institution, capacity=10, **update)
    with pytest.raises(RuleBroken) as refused:
        await run(bus, command)
    assert refused.value.field == field
    assert names(store) == ["Registered"]


async def test_one_head_and_one_finance_officer_at_a_time(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    for role in (OfficerRole.HEAD, OfficerRole.FINANCE_OFFICER):
        await run(bus, appointment(institution, role, date(2023, 1, 1), date(2027, 12, 31)))
        with pytest.raises(RuleBroken) as refused:
            await run(bus, appointment(institution, role, date(2026, 1, 1), date(2030, 12, 31)))
        assert refused.value.field == "role"
        # Starting after the first's term ends is fine.
        await run(bus, appointment(institution, role, date(2028, 1, 1), date(2032, 12, 31)))
    # Other posts may be held by several.
    for _ in range(2):
        await run(
            bus,
            appointment(institution, OfficerRole.SECRETARY, date(2024, 1, 1), date(2028, 12, 31)),
        )
    assert {role: len(ids) for role, ids in officers(store).items()} == {
        OfficerRole.HEAD: 2,
        OfficerRole.FINANCE_OFFICER: 2,
        OfficerRole.SECRETARY: 2,
    }


async def test_a_dismissed_head_makes_room_from_the_day_of_dismissal(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    await run(bus, appointment(institution, OfficerRole.HEAD, date(2023, 1, 1), date(2027, 12, 31)))
    [head] = officers(store)[OfficerRole.HEAD]
    successor = appointment(institution, OfficerRole.HEAD, date(2026, 6, 1), date(2031, 5, 31))
    with pytest.raises(RuleBroken):
        await run(bus, successor)
    dismissal = DismissOfficer(
        institution_id=institution, officer_id=head, reason=REASON, dismissed_on=date(2026, 6, 1)
    )
    await run(bus, dismissal)
    await run(bus, successor)
    assert names(store)[-2:] == ["OfficerDismissed", "OfficerAppointed"]
    # Dismissed once only; an unknown officer, or a dismissal in the future, is refused.
    for command, field in (
        (dismissal, "officer_id"),
        (msgspec.structs.replace(dismissal, officer_id=UUID(int=7)), "officer_id"),
        (
            DismissOfficer(
                institution_id=institution,
                officer_id=officers(store)[OfficerRole.HEAD][1],
                reason=REASON,
                dismissed_on=date(2026, 12, 1),
            ),
            "dismissed_on",
        ),
    ):
        with pytest.raises(RuleBroken) as refused:
            await run(bus, command)
        assert refused.value.field == field


async def test_a_term_ends_after_it_starts(bus: MessageBus, store: MemoryStore) -> None:
    institution = await registered(bus)
    for end in (date(2026, 1, 1), date(2025, 12, 31)):
        with pytest.raises(RuleBroken) as refused:
            await run(bus, appointment(institution, OfficerRole.SECRETARY, date(2026, 1, 1), end))
        assert refused.value.field == "term_end"
    assert names(store) == ["Registered"]


async def test_a_closed_institution_refuses_every_change(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    await run(bus, appointment(institution, OfficerRole.HEAD, date(2023, 1, 1), date(2027, 12, 31)))
    [head] = officers(store)[OfficerRole.HEAD]
    await run(bus, CloseInstitution(institution_id=institution, reason=REASON))
    recorded = len(store.events)
    for command in (
        UpdateInstitutionProfile(institution_id=institution, capacity=1),
        appointment(institution, OfficerRole.SECRETARY, date(2026, 1, 1), date(2027, 1, 1)),
        DismissOfficer(institution_id=institution, officer_id=head, reason=REASON),
    ):
        with pytest.raises(RuleBroken) as refused:
            await run(bus, command)
        assert refused.value.field == "status"
    assert len(store.events) == recorded


async def test_a_scoped_actor_changes_only_its_own_institution(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    update = UpdateInstitutionProfile(institution_id=institution, capacity=5)
    assert (await run(bus, update, Scope(pdm="3578", institution=institution))).version == 2
    with pytest.raises(OutOfScope):
        await run(bus, update, Scope(pdm="3578", institution=UUID(int=9)))
    with pytest.raises(OutOfScope):
        await run(bus, update, Scope(pdm="3515"))


def test_the_officers_identifiers_are_personal_data_of_the_officer() -> None:
    fields = personal_fields(Institution.OfficerAppointed)
    assert {name: p.subject for name, p in fields.items()} == {
        "full_name": "officer_id",
        "nik": "officer_id",
        "phone": "officer_id",
    }


async def test_the_record_keeps_no_personal_data_of_its_officers(
    bus: MessageBus, store: MemoryStore
) -> None:
    """Its state is what history, as-of reads and snapshots show: only the events hold the
    officers' names (sealed), so erasing their key leaves nothing behind."""
    institution = await registered(bus)
    await run(
        bus,
        appointment(
            institution, OfficerRole.HEAD, date(2023, 1, 1), date(2027, 12, 31), phone="0812 000"
        ),
    )
    state = str(vars(store.records[(TENANT, institution)]))
    assert "Ahmad" not in state
    assert "3578010101800001" not in state
