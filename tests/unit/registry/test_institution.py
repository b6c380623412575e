"""The registry's institutions, in memory: their rules and their scope."""

from __future__ import annotations

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
