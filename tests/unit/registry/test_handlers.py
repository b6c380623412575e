"""The registry's use cases in memory (no PostgreSQL): each handler through the bus, with
the rules every store shares — scope, If-Match, idempotency — from the kernel."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.reinstate_institution import ReinstateInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.application.suspend_institution import SuspendInstitution
from services.registry.domain.institution import Institution, InstitutionType
from shared.domain.errors import Conflict, NotFound, OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.context import CommandContext
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import MessageBus, Outcome
from tests.unit.fakes import MemoryStore, memory_bus

TENANT = "35"


@pytest.fixture
def bus(store: MemoryStore) -> MessageBus:
    return memory_bus("services.registry.application", store)


async def run(
    bus: MessageBus, command: Command, scope: Scope = PROVINCE, **options: Any
) -> Outcome:
    ctx = CommandContext(tenant=TENANT, actor="officer", correlation_id="c", scope=scope)
    return await bus.execute(command, ctx, **options)


def reply(outcome: Outcome) -> Accepted:
    return msgspec.json.decode(outcome.reply, type=Accepted)


def registration(pdm: str = "3578") -> RegisterInstitution:
    return RegisterInstitution(name="LKSA Muhammadiyah Wiyung", kind=InstitutionType.LKSA, pdm=pdm)


async def registered(bus: MessageBus) -> UUID:
    return reply(await run(bus, registration())).id


async def test_register_records_the_institution_and_answers_its_id_and_version(
    bus: MessageBus, store: MemoryStore
) -> None:
    outcome = await run(bus, registration())
    [event] = store.events_of(TENANT)
    assert isinstance(event, Institution.Registered)
    assert (reply(outcome).id, reply(outcome).version) == (event.originator_id, 1)
    assert outcome.position == 1


async def test_register_refuses_a_pdm_of_another_province(
    bus: MessageBus, store: MemoryStore
) -> None:
    with pytest.raises(RuleBroken) as refused:
        await run(bus, registration(pdm="3171"))
    assert refused.value.field == "pdm"
    assert store.events == []


async def test_suspend_then_reinstate_and_each_only_once(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    reason = "Keputusan rapat pleno 12/2026"
    assert (
        reply(await run(bus, SuspendInstitution(institution_id=institution, reason=reason))).version
        == 2
    )
    with pytest.raises(RuleBroken, match="already suspended"):
        await run(bus, SuspendInstitution(institution_id=institution, reason=reason))
    await run(bus, ReinstateInstitution(institution_id=institution, reason=reason))
    with pytest.raises(RuleBroken, match="not suspended"):
        await run(bus, ReinstateInstitution(institution_id=institution, reason=reason))
    assert [type(e).__name__ for e in store.events_of(TENANT)] == [
        "Registered",
        "Suspended",
        "Reinstated",
    ]


async def test_a_stale_version_is_a_conflict_and_changes_nothing(
    bus: MessageBus, store: MemoryStore
) -> None:
    institution = await registered(bus)
    rename = RenameInstitution(institution_id=institution, name="LKSA Wiyung Surabaya")
    await run(bus, rename, expected_versions={institution: 1})
    with pytest.raises(Conflict, match="version 2, not 1"):
        await run(
            bus,
            RenameInstitution(institution_id=institution, name="Nama Lain"),
            expected_versions={institution: 1},
        )
    assert len(store.events_of(TENANT)) == 2


async def test_an_unknown_record_is_not_found(bus: MessageBus) -> None:
    with pytest.raises(NotFound):
        await run(bus, RenameInstitution(institution_id=uuid4(), name="LKSA Baru"))


async def test_records_outside_the_actors_pdm_are_refused_new_or_old(
    bus: MessageBus, store: MemoryStore
) -> None:
    elsewhere = await registered(bus)  # in PDM 3578
    operator = Scope(pdm="3573")
    with pytest.raises(OutOfScope):
        await run(bus, registration(pdm="3578"), operator)
    with pytest.raises(OutOfScope):
        await run(bus, RenameInstitution(institution_id=elsewhere, name="Diambil"), operator)
    assert len(store.events_of(TENANT)) == 1
    await run(bus, registration(pdm="3573"), operator)


async def test_a_retried_command_is_answered_again_and_recorded_once(
    bus: MessageBus, store: MemoryStore
) -> None:
    first = await run(bus, registration(), idempotency_key="k1", request_fingerprint="a")
    again = await run(bus, registration(), idempotency_key="k1", request_fingerprint="a")
    assert again.replayed
    assert again.reply == first.reply
    assert len(store.events_of(TENANT)) == 1
    with pytest.raises(RuleBroken) as refused:
        await run(bus, registration(), idempotency_key="k1", request_fingerprint="b")
    assert refused.value.field == "Idempotency-Key"
