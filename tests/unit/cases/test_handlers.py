"""Cases' use cases in memory: receiving a complaint looks the institution up through the
directory port, and the complaint belongs where the institution (or the desk) is."""

from __future__ import annotations

from uuid import UUID, uuid4

import msgspec
import pytest

from services.cases.application.flag_complaint import FlagComplaint
from services.cases.application.receive_complaint import ReceiveComplaint
from services.cases.domain.complaint import Channel, Complaint, ComplaintFlag, KnownInstitution
from shared.domain.errors import OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.context import CommandContext
from shared.service_layer.commands import Accepted
from shared.service_layer.messagebus import MessageBus
from tests.unit.fakes import MemoryStore, memory_bus

TENANT = "35"
WIYUNG = KnownInstitution(uuid4(), "LKSA Muhammadiyah Wiyung", "active", pdm="3578")


class Directory:
    """What cases has learnt of the registry, per tenant."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    async def known(self, institution_id: UUID) -> KnownInstitution | None:
        found = self.tenant == TENANT and institution_id == WIYUNG.institution_id
        return WIYUNG if found else None


@pytest.fixture
def bus(store: MemoryStore) -> MessageBus:
    return memory_bus("services.cases.application", store, ports={"directory": Directory})


def complaint(institution_id: UUID | None = None) -> ReceiveComplaint:
    return ReceiveComplaint(
        channel=Channel.WHATSAPP,
        summary="Anak asuh tidak bersekolah sejak Agustus.",
        concerns_child=True,
        institution_id=institution_id,
    )


async def receive(bus: MessageBus, command: ReceiveComplaint, scope: Scope = PROVINCE) -> UUID:
    ctx = CommandContext(tenant=TENANT, actor="desk", correlation_id="c", scope=scope)
    return msgspec.json.decode((await bus.execute(command, ctx)).reply, type=Accepted).id


async def test_a_complaint_about_an_institution_belongs_to_its_pdm(
    bus: MessageBus, store: MemoryStore
) -> None:
    await receive(bus, complaint(WIYUNG.institution_id))
    [received] = store.events_of(TENANT)
    assert isinstance(received, Complaint.Received)
    assert (received.institution_id, received.pdm) == (WIYUNG.institution_id, "3578")


async def test_a_complaint_naming_no_institution_belongs_to_the_desk_that_took_it(
    bus: MessageBus, store: MemoryStore
) -> None:
    await receive(bus, complaint(), Scope(pdm="3573"))
    [received] = store.events_of(TENANT)
    assert received.pdm == "3573"


async def test_an_institution_the_directory_does_not_know_is_refused(
    bus: MessageBus, store: MemoryStore
) -> None:
    with pytest.raises(RuleBroken) as refused:
        await receive(bus, complaint(uuid4()))
    assert refused.value.field == "institution_id"
    assert store.events == []


async def test_a_pdm_desk_cannot_file_against_another_pdms_institution(
    bus: MessageBus, store: MemoryStore
) -> None:
    with pytest.raises(OutOfScope):
        await receive(bus, complaint(WIYUNG.institution_id), Scope(pdm="3573"))
    assert store.events == []


async def test_a_flag_is_raised_once_with_its_reason(bus: MessageBus, store: MemoryStore) -> None:
    complaint_id = await receive(bus, complaint(WIYUNG.institution_id))
    flag = FlagComplaint(
        complaint_id=complaint_id,
        flag=ComplaintFlag.INSTITUTION_CLOSED,
        reason="institution closed: dibubarkan",
    )
    ctx = CommandContext(tenant=TENANT, actor="process-manager:x", correlation_id="c")
    await bus.execute(flag, ctx)
    # Asked again (the rule's other path, a replay): nothing more is recorded.
    await bus.execute(flag, ctx)
    flagged = store.events_of(TENANT)[-1]
    assert isinstance(flagged, Complaint.Flagged)
    assert flagged.flag is ComplaintFlag.INSTITUTION_CLOSED
    assert len(store.events_of(TENANT)) == 2
