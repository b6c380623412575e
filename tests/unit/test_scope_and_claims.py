"""Scope below the tenant, token claims and the shared organisation rules, in memory."""

from __future__ import annotations

import time
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest
from litestar.exceptions import PermissionDeniedException

from services.cases.domain.complaint import Channel, Complaint, KnownInstitution
from services.hr.domain.social_worker import SocialWorker
from services.registry.domain.institution import Institution, InstitutionType, Owner
from shared.auth import InvalidToken, Principal, Role, TokenVerifier, mint_dev_token
from shared.domain.errors import OutOfScope, RuleBroken
from shared.domain.organisation import PROVINCE, PdmMustBeInProvince, Scope, check_scope
from shared.http.security import scope_of
from shared.settings import DEV_JWT_KEY, Settings

DEV = Settings()
LKSA = uuid4()
OTHER = uuid4()


# --- the organisation rule both registry and HR use --------------------------------------


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


# --- plausible birth dates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "accepted"),
    [
        (date(1, 1, 1), False),
        (date(1900, 1, 1), False),
        (date(1925, 11, 24), False),  # 101 today
        (date(1925, 11, 25), True),  # 101 tomorrow: the oldest accepted
        (date(1970, 5, 5), True),
        (date(2026, 11, 25), False),  # tomorrow
    ],
)
def test_a_birth_date_is_plausible(birth_date: date, accepted: bool) -> None:
    def hire() -> SocialWorker:
        return SocialWorker.register(
            tenant="31",
            full_name="Ahmad",
            birth_date=birth_date,
            pdm=None,
            today=date(2026, 11, 24),
        )

    if accepted:
        assert hire().birth_date == birth_date
    else:
        with pytest.raises(RuleBroken) as raised:
            hire()
        assert raised.value.field == "birth_date"


# --- scope ---------------------------------------------------------------------------------


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


def test_records_know_their_own_scope() -> None:
    institution = Institution.register(
        tenant="31",
        name="LKSA Menteng",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm="3171",
    )
    assert institution.scope == Scope(pdm="3171", institution=institution.id)
    worker = SocialWorker.register(
        tenant="31",
        full_name="Ahmad",
        birth_date=date(1980, 1, 1),
        pdm=None,
        today=date(2026, 1, 1),
    )
    assert worker.scope == PROVINCE


def test_a_complaint_belongs_to_its_institutions_pdm_else_to_the_desk_that_took_it() -> None:
    known = KnownInstitution(LKSA, "LKSA Menteng", "active", pdm="3171")
    about = Complaint.receive(
        channel=Channel.PHONE,
        summary="Keluhan tentang LKSA.",
        concerns_child=False,
        institution_id=LKSA,
        institution=known,
        received_in=Scope(pdm="3172"),
    )
    assert about.scope == Scope(pdm="3171", institution=LKSA)
    general = Complaint.receive(
        channel=Channel.PHONE,
        summary="Pengaduan umum.",
        concerns_child=False,
        institution_id=None,
        institution=None,
        received_in=Scope(pdm="3172"),
    )
    assert general.scope == Scope(pdm="3172")


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


# --- token claims --------------------------------------------------------------------------


def _token(**claims: Any) -> str:
    body = {"sub": "x", "tenant": "31", "roles": ["auditor"], "exp": int(time.time()) + 60}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, DEV_JWT_KEY, "HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": ""},
        {"sub": " \t "},
        {"sub": "admin "},
        {"sub": "ad\u200bmin"},  # an invisible format character
        {"sub": "a" * 201},
        {"roles": []},
        {"roles": ["pdm_operator"]},
        {"roles": ["pdm_operator"], "pdm": "3578"},
        {"roles": ["pdm_operator"], "pdm": "31711"},
        {"roles": ["institution_staff"]},
        {"roles": ["institution_staff"], "institution": "not-a-uuid"},
        {"tenant": "national", "roles": ["national_admin"], "institution": str(LKSA)},
    ],
    ids=repr,
)
def test_tokens_with_meaningless_claims_are_invalid(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(_token(**claims))


def test_scoped_tokens_carry_their_scope() -> None:
    operator = TokenVerifier(DEV).verify(_token(roles=["pdm_operator"], pdm="3171"))
    assert operator.pdm == "3171"
    staff = TokenVerifier(DEV).verify(_token(roles=["institution_staff"], institution=str(LKSA)))
    assert staff.institution == LKSA
    assert TokenVerifier(DEV).verify(_token(sub="u" * 200)).sub == "u" * 200


def test_minting_refuses_what_verifying_would() -> None:
    for kwargs, why in (
        ({"sub": "", "roles": [Role.AUDITOR]}, "sub"),
        ({"sub": "x", "roles": []}, "roles"),
        ({"sub": "x", "roles": [Role.PDM_OPERATOR]}, "'pdm'"),
        ({"sub": "x", "roles": [Role.PDM_OPERATOR], "pdm": "3578"}, "province 31"),
        ({"sub": "x", "roles": [Role.INSTITUTION_STAFF]}, "'institution'"),
    ):
        with pytest.raises(ValueError, match=why):
            mint_dev_token(DEV, tenant="31", **kwargs)  # type: ignore[arg-type]
