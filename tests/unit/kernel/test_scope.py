"""Scope below the tenant and the shared organisation rule, in memory."""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid4

import pytest
from litestar.exceptions import PermissionDeniedException

from services.hr.domain.social_worker import SocialWorker
from services.registry.domain.institution import Institution, InstitutionType, Owner
from shared.auth import Principal, Role
from shared.domain.errors import OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, PdmMustBeInProvince, Scope, check_scope
from shared.http.security import scope_of

LKSA = uuid4()
OTHER = uuid4()


@pytest.mark.parametrize(
    ("pdm", "tenant", "broken"),
    [("3578", "35", False), ("3578", "31", True), ("357", "35", True), ("35a8", "35", True)],
)
def test_a_pdm_must_be_a_regency_or_city_of_its_province(
    pdm: str, tenant: str, broken: bool
) -> None:
    assert PdmMustBeInProvince(pdm, tenant).is_broken() is broken


def test_registry_and_hr_share_the_pdm_rule() -> None:
    with pytest.raises(RuleBroken) as registry:
        Institution.register(
            tenant="31",
            name="LKSA Lintas",
            kind=InstitutionType.LKSA,
            owner=Owner.AISYIYAH,
            pdm="3578",
        )
    with pytest.raises(RuleBroken) as hr:
        SocialWorker.register(
            tenant="31",
            full_name="Siti Aminah",
            birth_date=date(1990, 1, 1),
            pdm="3578",
            today=date(2026, 1, 1),
        )
    assert registry.value.field == hr.value.field == "pdm"
    assert registry.value.detail == hr.value.detail


@pytest.mark.parametrize(
    ("actor", "record", "covered"),
    [
        (PROVINCE, Scope(pdm="3171", institution=LKSA), True),
        (PROVINCE, PROVINCE, True),
        (Scope(pdm="3171"), Scope(pdm="3171", institution=LKSA), True),
        (Scope(pdm="3171"), Scope(pdm="3172", institution=LKSA), False),
        (Scope(pdm="3171"), PROVINCE, False),  # a province-level record
        (Scope(institution=LKSA), Scope(pdm="3171", institution=LKSA), True),
        (Scope(institution=LKSA), Scope(pdm="3171", institution=OTHER), False),
        (Scope(institution=LKSA), Scope(pdm="3171"), False),
    ],
)
def test_an_actor_covers_records_inside_its_scope(
    actor: Scope, record: Scope, covered: bool
) -> None:
    assert actor.covers(record) is covered
    if covered:
        check_scope(actor, record, "the record")
    else:
        with pytest.raises(OutOfScope, match=str(actor)):
            check_scope(actor, record, "the record")


def _principal(*roles: Role, pdm: str | None = None, institution: UUID | None = None) -> Principal:
    return Principal(sub="x", tenant="31", roles=frozenset(roles), pdm=pdm, institution=institution)


def test_the_scope_on_a_route_comes_from_the_roles_it_grants() -> None:
    operator = _principal(Role.PDM_OPERATOR, Role.AUDITOR, pdm="3171")
    # A route for writers grants only the operator role: its PDM bounds it.
    assert scope_of(operator, frozenset({Role.PDM_OPERATOR})) == Scope(pdm="3171")
    # A route for readers grants auditing too: auditors read the whole province.
    assert scope_of(operator, operator.roles) == PROVINCE
    staff = _principal(Role.INSTITUTION_STAFF, institution=LKSA)
    assert scope_of(staff, staff.roles) == Scope(institution=LKSA)
    admin = _principal(Role.WILAYAH_ADMIN, Role.PDM_OPERATOR, pdm="3171")
    assert scope_of(admin, admin.roles) == PROVINCE
    # Nothing granted says where the caller may act: refused, never the whole province.
    with pytest.raises(PermissionDeniedException):
        scope_of(_principal(Role.PDM_OPERATOR), frozenset({Role.PDM_OPERATOR}))
    with pytest.raises(PermissionDeniedException):
        scope_of(admin, frozenset())
