"""Accreditation and licences in memory: the board's decisions and their refusals, through
the bus on the fake unit of work (scope and concurrency rules from the kernel)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from services.registry.application.close_institution import CloseInstitution
from services.registry.application.expire_accreditation import ExpireAccreditation
from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.application.record_licence import RecordLicence
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.renew_licence import RenewLicence
from services.registry.application.revoke_accreditation import RevokeAccreditation
from services.registry.application.revoke_licence import RevokeLicence
from services.registry.configuration import parse_validity
from services.registry.domain.accreditation import (
    Accreditation,
    AccreditationStatus,
    CertificateNumber,
    Grade,
    Scores,
    accreditation_id,
)
from services.registry.domain.institution import InstitutionType
from services.registry.domain.licence import Licence, LicenceKind, LicenceStatus, licence_id
from shared.domain.errors import DomainError, OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, Scope
from shared.eventstore.context import CommandContext
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.handlers import HandlerRegistry
from shared.service_layer.messagebus import MessageBus, Outcome
from shared.service_layer.ports import SystemClock
from tests.unit.fakes import FakeUnitsOfWork, MemoryStore, memory_bus

TENANT = "35"
TODAY = date(2026, 11, 24)
GOOD = Scores(programme=82, human_resources=75, management=80, facilities=70, service_results=78)


@pytest.fixture
def bus(store: MemoryStore) -> MessageBus:
    return memory_bus("services.registry.application", store, today=TODAY)


async def run(bus: MessageBus, command: Command, scope: Scope = PROVINCE) -> Outcome:
    ctx = CommandContext(tenant=TENANT, actor="officer", correlation_id="c", scope=scope)
    return await bus.execute(command, ctx)


async def institution(bus: MessageBus, pdm: str = "3578") -> UUID:
    outcome = await run(
        bus, RegisterInstitution(name="LKSA Wiyung", kind=InstitutionType.LKSA, pdm=pdm)
    )
    return msgspec.json.decode(outcome.reply, type=Accepted).id


def decision(institution_id: UUID, **changes: Any) -> RecordAccreditation:
    fields: dict[str, Any] = {
        "institution_id": institution_id,
        "grade": Grade.B,
        "scores": GOOD,
        "decided_on": date(2026, 3, 12),
        "regulation": "Permensos 8/2025",
        "certificate_number": f"{uuid4().hex[:6]}/BAN-PS/2026",
    }
    return RecordAccreditation(**(fields | changes))


def events(store: MemoryStore, kind: type[Any]) -> list[Any]:
    return [e for e in store.events_of(TENANT) if isinstance(e, kind)]


async def refused(bus: MessageBus, store: MemoryStore, command: Command, field: str) -> None:
    """The command is refused naming `field`, and nothing is recorded."""
    before = len(store.events)
    with pytest.raises(DomainError) as refusal:
        await run(bus, command)
    assert refusal.value.field == field
    assert len(store.events) == before


async def test_a_grade_is_granted_until_the_default_date_of_its_grade(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    for grade, years in ((Grade.A, 5), (Grade.B, 3), (Grade.C, 2)):
        await run(bus, decision(lksa, grade=grade, decided_on=date(2026, 3, 12)))
        granted = events(store, Accreditation.Granted)[-1]
        assert (granted.grade, granted.valid_until) == (grade, date(2026 + years, 3, 12))
    assert granted.scores == GOOD
    assert granted.institution_id == lksa


async def test_the_decision_may_give_its_own_date(bus: MessageBus, store: MemoryStore) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa, valid_until=date(2027, 1, 31)))
    [granted] = events(store, Accreditation.Granted)
    assert granted.valid_until == date(2027, 1, 31)


async def test_a_new_decision_replaces_the_current_one_and_history_is_kept(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa, grade=Grade.C, decided_on=date(2024, 1, 5)))
    await run(bus, decision(lksa, grade=Grade.A))
    record = store.records[(TENANT, accreditation_id(lksa))]
    assert isinstance(record, Accreditation)
    assert record.grade is Grade.A
    assert [e.grade for e in events(store, Accreditation.Granted)] == [Grade.C, Grade.A]


async def test_not_accredited_needs_no_certificate_and_has_no_date(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa, grade=Grade.NOT_ACCREDITED, certificate_number=None))
    [refusal] = events(store, Accreditation.Refused)
    assert refusal.scores == GOOD
    await refused(
        bus,
        store,
        decision(
            lksa, grade=Grade.NOT_ACCREDITED, certificate_number=None, valid_until=date(2027, 1, 1)
        ),
        "valid_until",
    )
    await refused(bus, store, decision(lksa, grade=Grade.NOT_ACCREDITED), "certificate_number")


async def test_refusals_name_the_field_and_record_nothing(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    await refused(bus, store, decision(lksa, certificate_number=None), "certificate_number")
    out_of_range = msgspec.structs.replace(GOOD, facilities=101)
    await refused(bus, store, decision(lksa, scores=out_of_range), "scores")
    negative = msgspec.structs.replace(GOOD, programme=-1)
    await refused(bus, store, decision(lksa, scores=negative), "scores")
    await refused(bus, store, decision(lksa, valid_until=date(2026, 3, 12)), "valid_until")
    await refused(bus, store, decision(lksa, valid_until=date(2025, 1, 1)), "valid_until")
    await refused(bus, store, decision(lksa, decided_on=date(2026, 11, 25)), "decided_on")


async def test_a_certificate_number_is_recorded_once_per_province(
    bus: MessageBus, store: MemoryStore
) -> None:
    first, second = await institution(bus), await institution(bus, pdm="3515")
    await run(bus, decision(first, certificate_number="12/BAN-PS/2026"))
    # Another spelling of the same number, for another institution of another PDM.
    await refused(
        bus, store, decision(second, certificate_number=" 12/ban-ps/2026 "), "certificate_number"
    )
    # Even an operator of the second PDM, who cannot see the first claim, is told.
    with pytest.raises(RuleBroken) as refusal:
        await run(bus, decision(second, certificate_number="12/BAN-PS/2026"), Scope(pdm="3515"))
    assert refusal.value.field == "certificate_number"
    assert len(events(store, CertificateNumber.Claimed)) == 1


async def test_an_older_decision_does_not_replace_a_newer_one(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa))
    await refused(bus, store, decision(lksa, decided_on=date(2025, 1, 1)), "decided_on")


async def test_nothing_changes_for_a_closed_institution(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa))
    await run(
        bus,
        RecordLicence(
            institution_id=lksa,
            kind=LicenceKind.OPERATING,
            number="1",
            issuer="Dinsos",
            issued_on=date(2025, 1, 1),
        ),
    )
    await run(bus, CloseInstitution(institution_id=lksa, reason="Keputusan pleno"))
    await refused(bus, store, decision(lksa), "institution_id")
    await refused(
        bus,
        store,
        RevokeAccreditation(institution_id=lksa, reason="Keputusan BAN-PS"),
        "institution_id",
    )
    await refused(
        bus,
        store,
        RenewLicence(
            licence_id=licence_id(lksa, LicenceKind.OPERATING),
            number="2",
            issuer="Dinsos",
            issued_on=date(2026, 1, 1),
        ),
        "institution_id",
    )


async def test_an_operator_records_only_in_its_own_pdm(bus: MessageBus, store: MemoryStore) -> None:
    lksa = await institution(bus, pdm="3578")
    with pytest.raises(OutOfScope):
        await run(bus, decision(lksa), Scope(pdm="3515"))
    await run(bus, decision(lksa), Scope(pdm="3578"))
    assert len(events(store, Accreditation.Granted)) == 1


async def test_revocation_ends_the_accreditation_in_force_once(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa))
    await run(bus, RevokeAccreditation(institution_id=lksa, reason="Keputusan BAN-PS 45/2026"))
    [revoked] = events(store, Accreditation.Revoked)
    assert revoked.decision_id == events(store, Accreditation.Granted)[0].decision_id
    await refused(bus, store, RevokeAccreditation(institution_id=lksa, reason="Lagi"), "status")


async def test_expiry_ends_only_the_decision_in_force(bus: MessageBus, store: MemoryStore) -> None:
    lksa = await institution(bus)
    await run(bus, decision(lksa, decided_on=date(2020, 1, 2)))
    old = events(store, Accreditation.Granted)[0].decision_id
    await run(bus, decision(lksa, decided_on=date(2026, 1, 2)))
    new = events(store, Accreditation.Granted)[1].decision_id
    # The replaced decision's deadline comes: nothing happens.
    await run(bus, ExpireAccreditation(institution_id=lksa, decision_id=old))
    assert events(store, Accreditation.Expired) == []
    await run(bus, ExpireAccreditation(institution_id=lksa, decision_id=new))
    await run(bus, ExpireAccreditation(institution_id=lksa, decision_id=new))
    [expired] = events(store, Accreditation.Expired)
    assert (expired.decision_id, expired.valid_until) == (new, date(2029, 1, 2))
    record = store.records[(TENANT, accreditation_id(lksa))]
    assert isinstance(record, Accreditation)
    assert record.status is AccreditationStatus.EXPIRED


def test_the_default_validity_is_configured_per_grade() -> None:
    validity = parse_validity("A=4, c=1")
    assert validity.years == {Grade.A: 4, Grade.B: 3, Grade.C: 1}
    assert validity.until(Grade.A, date(2024, 2, 29)) == date(2028, 2, 29)
    assert parse_validity("B=1").until(Grade.B, date(2024, 2, 29)) == date(2025, 2, 28)
    for wrong in ("A=0", "D=3", "A", "not_accredited=2", "A=x"):
        with pytest.raises(ValueError, match="MPKS_ACCREDITATION_VALIDITY_YEARS"):
            parse_validity(wrong)


async def test_licences_are_recorded_renewed_and_revoked(
    bus: MessageBus, store: MemoryStore
) -> None:
    lksa = await institution(bus)
    record = RecordLicence(
        institution_id=lksa,
        kind=LicenceKind.OPERATING,
        number="460/1/2024",
        issuer="Dinas Sosial Provinsi Jawa Timur",
        issued_on=date(2024, 5, 2),
        valid_until=date(2026, 12, 1),
    )
    await run(bus, record)
    await refused(bus, store, record, "kind")
    renew = RenewLicence(
        licence_id=licence_id(lksa, LicenceKind.OPERATING),
        number="460/2/2026",
        issuer="Dinas Sosial Provinsi Jawa Timur",
        issued_on=date(2026, 11, 1),
        valid_until=date(2031, 11, 1),
    )
    await refused(
        bus, store, msgspec.structs.replace(renew, issued_on=date(2024, 1, 1)), "issued_on"
    )
    await refused(
        bus, store, msgspec.structs.replace(renew, valid_until=date(2026, 10, 1)), "valid_until"
    )
    await refused(
        bus, store, msgspec.structs.replace(renew, issued_on=date(2026, 12, 1)), "issued_on"
    )
    await run(bus, renew)
    revoke = RevokeLicence(
        licence_id=licence_id(lksa, LicenceKind.OPERATING), reason="Izin dicabut"
    )
    await run(bus, revoke)
    await refused(bus, store, revoke, "status")
    # A new licence after the revocation is a renewal of the record.
    await run(bus, msgspec.structs.replace(renew, issued_on=date(2026, 11, 20)))
    licence = next(r for r in store.records.values() if isinstance(r, Licence))
    assert (licence.status, licence.number) == (LicenceStatus.VALID, "460/2/2026")
    assert [type(e).__name__ for e in events(store, Licence.Event)] == [
        "Recorded",
        "Renewed",
        "Revoked",
        "Renewed",
    ]


class _EveningInJakarta(SystemClock):
    """24 November 2026, 16:30 UTC: 23:30 in Jakarta (WIB), already 01:30 on the 25th in
    Jayapura (WIT)."""

    def now(self) -> datetime:
        return datetime(2026, 11, 24, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tenant", "pdm", "accepted"), [("94", "9471", True), ("35", "3578", False)]
)
async def test_a_decision_dated_today_is_of_the_provinces_own_day(
    store: MemoryStore, tenant: str, pdm: str, accepted: bool
) -> None:
    bus = MessageBus(
        HandlerRegistry.discover("services.registry.application"),
        FakeUnitsOfWork(store),
        clock=_EveningInJakarta(),
    )
    ctx = CommandContext(tenant=tenant, actor="officer", correlation_id="c")
    registered = await bus.execute(
        RegisterInstitution(name="LKSA Jayapura", kind=InstitutionType.LKSA, pdm=pdm), ctx
    )
    record = msgspec.json.decode(registered.reply, type=Accepted).id
    twenty_fifth = decision(record, decided_on=date(2026, 11, 25))
    if accepted:
        await bus.execute(twenty_fifth, ctx)
        assert [e.grade for e in store.events_of(tenant) if isinstance(e, Accreditation.Granted)]
    else:
        with pytest.raises(RuleBroken) as refused:
            await bus.execute(twenty_fifth, ctx)
        assert refused.value.field == "decided_on"


async def test_only_an_accreditation_in_force_is_revoked(
    bus: MessageBus, store: MemoryStore
) -> None:
    never_assessed = await institution(bus)
    revoke = RevokeAccreditation(institution_id=never_assessed, reason="Keputusan BAN-PS 45/2026")
    await refused(bus, store, revoke, "status")
    # Valid until yesterday: it ended then, though the scheduler has not recorded it yet.
    lapsed = await institution(bus)
    await run(bus, decision(lapsed, decided_on=date(2024, 1, 5), valid_until=date(2026, 11, 23)))
    await refused(bus, store, msgspec.structs.replace(revoke, institution_id=lapsed), "status")
    # On its last day it is still in force.
    last_day = await institution(bus)
    await run(bus, decision(last_day, valid_until=TODAY))
    await run(bus, msgspec.structs.replace(revoke, institution_id=last_day))
    [revoked] = events(store, Accreditation.Revoked)
    assert revoked.institution_id == last_day
