"""The registry's institutions, in memory: their rules and their scope."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from shared.domain.errors import RuleBroken
from shared.domain.organisation import Scope


def institution(tenant: str = "51", pdm: str = "5171") -> Institution:
    return Institution.register(
        tenant=tenant,
        name="Panti Asuhan Muhammadiyah Denpasar",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm=pdm,
    )


@pytest.mark.parametrize("pdm", ["3171", "517", "51711", "51a1", ""])
def test_institution_refuses_a_pdm_outside_its_province(pdm: str) -> None:
    with pytest.raises(RuleBroken) as raised:
        institution(tenant="51", pdm=pdm)
    assert raised.value.field == "pdm"


def test_institution_accepts_a_pdm_of_its_own_province() -> None:
    created = institution(tenant="51", pdm="5171")
    assert created.pdm == "5171"
    assert created.status is InstitutionStatus.ACTIVE
    assert created.version == 1


def test_suspending_twice_is_refused() -> None:
    created = institution()
    created.suspend()
    assert created.status is InstitutionStatus.SUSPENDED
    with pytest.raises(RuleBroken) as raised:
        created.suspend()
    assert raised.value.field == "status"
    # The refused command recorded nothing.
    assert [type(e).__name__ for e in created.collect_events()] == ["Registered", "Suspended"]


def test_reinstating_an_active_institution_is_refused() -> None:
    created = institution()
    with pytest.raises(RuleBroken) as raised:
        created.reinstate()
    assert raised.value.field == "status"
    created.suspend()
    created.reinstate()
    assert created.status is InstitutionStatus.ACTIVE


def test_closing_an_active_institution_records_closed() -> None:
    created = institution()
    created.close()
    assert created.status is InstitutionStatus.CLOSED
    assert [type(e).__name__ for e in created.collect_events()] == ["Registered", "Closed"]


def test_a_suspended_institution_is_reinstated_before_it_closes() -> None:
    created = institution()
    created.suspend()
    with pytest.raises(RuleBroken) as raised:
        created.close()
    assert raised.value.field == "status"
    assert "reinstate it first" in raised.value.detail
    assert [type(e).__name__ for e in created.collect_events()] == ["Registered", "Suspended"]
    created.reinstate()
    created.close()
    assert created.status is InstitutionStatus.CLOSED


@pytest.mark.parametrize(
    "change",
    [
        Institution.close,
        Institution.suspend,
        Institution.reinstate,
        lambda closed: closed.rename("Panti Asuhan Muhammadiyah Kota Denpasar"),
        lambda closed: closed.rename(closed.name),
    ],
    ids=["close", "suspend", "reinstate", "rename", "rename-to-the-same-name"],
)
def test_a_closed_institution_only_reads(change: Callable[[Institution], None]) -> None:
    closed = institution()
    closed.close()
    closed.collect_events()
    with pytest.raises(RuleBroken) as raised:
        change(closed)
    assert raised.value.field == "status"
    assert raised.value.detail == "the institution is closed: it can no longer change"
    # Refused: nothing recorded, nothing changed.
    assert closed.collect_events() == []
    assert (closed.status, closed.version) == (InstitutionStatus.CLOSED, 2)


def test_renaming_to_the_same_name_records_nothing() -> None:
    created = institution()
    created.rename(created.name)
    assert created.version == 1
    created.rename("Panti Asuhan Muhammadiyah Kota Denpasar")
    assert created.version == 2


def test_an_institution_is_scoped_to_its_pdm_and_itself() -> None:
    institution = Institution.register(
        tenant="31",
        name="LKSA Menteng",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm="3171",
    )
    assert institution.scope == Scope(pdm="3171", institution=institution.id)
