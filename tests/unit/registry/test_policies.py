"""Policies in memory: who decides which, four eyes, revisions, supersession."""

from __future__ import annotations

from uuid import UUID, uuid4

import msgspec
import pytest

from services.registry.application.approve_policy import ApprovePolicy
from services.registry.application.open_unit import OpenUnit
from services.registry.application.propose_policy import ProposePolicy
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.reject_policy import RejectPolicy
from services.registry.application.request_policy_revision import RequestPolicyRevision
from services.registry.application.revise_policy import RevisePolicy
from services.registry.domain.institution import InstitutionType
from services.registry.domain.organisation_unit import UnitKind
from services.registry.domain.policy import Policy, PolicyLevel, PolicyStatus
from shared.domain.errors import DomainError, OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.context import CommandContext
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import MessageBus
from tests.unit.fakes import MemoryStore, memory_bus

TENANT = "35"
RULE = "MPKS rule 268/1.7/A/2023"


@pytest.fixture
async def bus(store: MemoryStore) -> MessageBus:
    """PDM Kota Surabaya is recorded: the council deciding its institutions' policies."""
    bus = memory_bus("services.registry.application", store)
    await run(bus, OpenUnit(kind=UnitKind.PDM, code="3578", name="PDM Kota Surabaya"))
    return bus


async def run(
    bus: MessageBus, command: Command, actor: str = "admin", scope: Scope = PROVINCE
) -> UUID:
    ctx = CommandContext(tenant=TENANT, actor=actor, correlation_id="c", scope=scope)
    outcome = await bus.execute(command, ctx)
    return msgspec.json.decode(outcome.reply, type=Accepted).id


async def refused(
    bus: MessageBus,
    store: MemoryStore,
    command: Command,
    actor: str = "admin",
    scope: Scope = PROVINCE,
    error: type[DomainError] = RuleBroken,
) -> DomainError:
    before = len(store.events)
    with pytest.raises(error) as raised:
        await run(bus, command, actor, scope)
    assert len(store.events) == before
    return raised.value


def policy(store: MemoryStore, policy_id: UUID) -> Policy:
    found = store.records[(TENANT, policy_id)]
    assert isinstance(found, Policy)
    return found


async def institution(bus: MessageBus, unit: str | None = None) -> UUID:
    return await run(
        bus,
        RegisterInstitution(
            name="LKSA Muhammadiyah Wiyung", kind=InstitutionType.LKSA, pdm="3578", unit=unit
        ),
    )


def proposal(
    institution_id: UUID, level: PolicyLevel = PolicyLevel.INSTITUTION, **more: object
) -> ProposePolicy:
    return ProposePolicy(
        level=level,
        rule=RULE,
        title="Kebijakan perlindungan anak",
        summary="Prosedur keselamatan anak.",
        institution_id=institution_id,
        **more,  # type: ignore[arg-type]
    )


async def test_an_institutions_policy_is_decided_by_its_pdm_never_by_its_proposer(
    bus: MessageBus, store: MemoryStore
) -> None:
    home = await institution(bus)
    staff = Scope(institution=home)
    proposed = await run(bus, proposal(home), actor="kepala-lksa", scope=staff)
    assert (policy(store, proposed).approver_kind, policy(store, proposed).approver) == (
        UnitKind.PDM,
        "3578",
    )
    assert policy(store, proposed).proposed_by == "kepala-lksa"
    operator = Scope(pdm="3578")
    for decision in (
        ApprovePolicy(policy_id=proposed, remarks="Sesuai."),
        RejectPolicy(policy_id=proposed, remarks="tidak sesuai"),
        RequestPolicyRevision(policy_id=proposed, remarks="lengkapi"),
    ):
        own = await refused(bus, store, decision, actor="kepala-lksa", scope=operator)
        assert own.field == "proposed_by"
    await refused(
        bus,
        store,
        ApprovePolicy(policy_id=proposed, remarks="Sesuai."),
        "op-3573",
        Scope(pdm="3573"),
        OutOfScope,
    )
    await run(
        bus, ApprovePolicy(policy_id=proposed, remarks="Sesuai"), actor="op-3578", scope=operator
    )
    assert policy(store, proposed).status is PolicyStatus.APPROVED
    again = await refused(bus, store, RejectPolicy(policy_id=proposed, remarks="terlambat"), "op-2")
    assert again.field == "status"


async def test_staff_propose_only_for_their_institution(
    bus: MessageBus, store: MemoryStore
) -> None:
    home, other = await institution(bus), await institution(bus)
    await refused(bus, store, proposal(other), "kepala-lksa", Scope(institution=home), OutOfScope)
    city = ProposePolicy(
        level=PolicyLevel.CITY,
        rule=RULE,
        title="Standar layanan",
        summary="Standar.",
        unit_kind=UnitKind.PDM,
        unit="3578",
    )
    await refused(bus, store, city, "kepala-lksa", Scope(institution=home), OutOfScope)


async def test_the_proposer_is_one_institution_or_one_council_fitting_the_level(
    bus: MessageBus, store: MemoryStore
) -> None:
    home = await institution(bus)
    both = proposal(home, unit_kind=UnitKind.PDM, unit="3578")
    assert (await refused(bus, store, both)).field == "institution_id"
    # Directly under its PDM: no branch to decide a branch-level policy.
    assert (await refused(bus, store, proposal(home, PolicyLevel.BRANCH))).field == "level"
    unrecorded = ProposePolicy(
        level=PolicyLevel.CITY,
        rule=RULE,
        title="Standar",
        summary="Standar.",
        unit_kind=UnitKind.PCM,
        unit="357899",
    )
    assert (await refused(bus, store, unrecorded)).field == "unit"
    # An institution of a PDM never recorded: no council to decide its policies yet.
    malang = await run(
        bus, RegisterInstitution(name="LKSA Malang", kind=InstitutionType.LKSA, pdm="3573")
    )
    undecided = await refused(bus, store, proposal(malang))
    assert (undecided.field, "not recorded" in undecided.detail) == ("level", True)


async def test_branch_policies_go_to_the_branch_and_city_ones_to_the_pdm(
    bus: MessageBus, store: MemoryStore
) -> None:
    await run(bus, OpenUnit(kind=UnitKind.PCM, code="357801", name="PCM Karang Pilang"))
    home = await institution(bus, unit="357801")
    branch = await run(bus, proposal(home, PolicyLevel.BRANCH))
    assert policy(store, branch).decider == (UnitKind.PCM, "357801")
    city = await run(
        bus,
        ProposePolicy(
            level=PolicyLevel.CITY,
            rule=RULE,
            title="Standar",
            summary="Standar.",
            unit_kind=UnitKind.PCM,
            unit="357801",
        ),
    )
    assert policy(store, city).decider == (UnitKind.PDM, "3578")
    assert policy(store, await run(bus, proposal(home))).decider == (UnitKind.PDM, "3578")


async def test_a_policy_sent_back_is_revised_by_its_proposer_and_decided_again(
    bus: MessageBus, store: MemoryStore
) -> None:
    home = await institution(bus)
    proposed = await run(bus, proposal(home), actor="kepala-lksa")
    revise = RevisePolicy(
        policy_id=proposed, rule=RULE, title="Kebijakan (revisi)", summary="Lengkap."
    )
    assert (await refused(bus, store, revise, "kepala-lksa")).field == "status"
    await run(bus, RequestPolicyRevision(policy_id=proposed, remarks="Lengkapi pelaporan."), "op")
    assert policy(store, proposed).status is PolicyStatus.REVISION_REQUESTED
    assert (
        await refused(bus, store, ApprovePolicy(policy_id=proposed, remarks="Sesuai."), "op")
    ).field == "status"
    await run(bus, revise, actor="kepala-lksa")
    assert (policy(store, proposed).status, policy(store, proposed).title) == (
        PolicyStatus.PROPOSED,
        "Kebijakan (revisi)",
    )
    await run(bus, RejectPolicy(policy_id=proposed, remarks="Tetap tidak sesuai."), "op")
    assert policy(store, proposed).status is PolicyStatus.REJECTED


async def test_a_newer_approved_policy_supersedes_the_one_in_force(
    bus: MessageBus, store: MemoryStore
) -> None:
    home = await institution(bus)
    first = await run(bus, proposal(home), actor="kepala-lksa")
    early = await refused(bus, store, proposal(home, supersedes=first), "kepala-lksa")
    assert early.field == "supersedes"
    await run(bus, ApprovePolicy(policy_id=first, remarks="Sesuai."), "op")
    newer = await run(bus, proposal(home, supersedes=first), actor="kepala-lksa")
    city = proposal(home, PolicyLevel.CITY, supersedes=first)
    assert (await refused(bus, store, city, "kepala-lksa")).field == "supersedes"
    await run(bus, ApprovePolicy(policy_id=newer, remarks="Sesuai."), "op")
    old = policy(store, first)
    assert (old.status, old.superseded_by) == (PolicyStatus.SUPERSEDED, newer)
    assert [type(e).__name__ for e in store.events_of(TENANT)][-2:] == ["Approved", "Superseded"]


async def test_an_institutions_policy_supersedes_only_that_institutions_own(
    bus: MessageBus, store: MemoryStore
) -> None:
    home, other = await institution(bus), await institution(bus)
    theirs = await run(bus, proposal(other), actor="kepala-lain")
    await run(bus, ApprovePolicy(policy_id=theirs, remarks="Sesuai."), "op")
    # Same council (the PDM), same level: still not this institution's policy to replace.
    refusal = await refused(bus, store, proposal(home, supersedes=theirs), "kepala-lksa")
    assert (refusal.field, "another institution's" in refusal.detail) == ("supersedes", True)
    assert policy(store, theirs).status is PolicyStatus.APPROVED


async def test_a_decided_policy_is_neither_revised_nor_decided_again(
    bus: MessageBus, store: MemoryStore
) -> None:
    home = await institution(bus)
    first = await run(bus, proposal(home), actor="kepala-lksa")
    await run(bus, ApprovePolicy(policy_id=first, remarks="Sesuai."), "op")
    revise = RevisePolicy(policy_id=first, rule=RULE, title="Perubahan", summary="Lain.")
    assert (await refused(bus, store, revise, "kepala-lksa")).field == "status"
    one, another = [
        await run(bus, proposal(home, supersedes=first), actor="kepala-lksa") for _ in range(2)
    ]
    await run(bus, ApprovePolicy(policy_id=one, remarks="Sesuai."), "op")
    # Both were to replace `first`, which the other has replaced since.
    late = await refused(bus, store, ApprovePolicy(policy_id=another, remarks="Sesuai."), "op")
    assert late.field == "supersedes"
    superseded = await refused(bus, store, ApprovePolicy(policy_id=first, remarks="Lagi."), "op2")
    assert superseded.field == "status"


async def test_a_record_named_in_the_body_that_was_never_recorded_is_that_fields_fault(
    bus: MessageBus, store: MemoryStore
) -> None:
    assert (await refused(bus, store, proposal(uuid4()))).field == "institution_id"
    home = await institution(bus)
    assert (await refused(bus, store, proposal(home, supersedes=uuid4()))).field == "supersedes"
