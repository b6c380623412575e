"""Pure rules and helpers, no I/O: domain invariants, tokens, settings, the event catalogue."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from uuid import uuid4

import jwt
import msgspec
import pytest

from services.cases.domain.complaint import Channel, Complaint, KnownInstitution
from services.hr.domain.social_worker import SocialWorker
from services.registry.domain.institution import (
    Institution,
    InstitutionStatus,
    InstitutionType,
    Owner,
)
from shared.auth import InvalidToken, Role, TokenVerifier, mint_dev_token
from shared.domain.errors import RuleBroken
from shared.domain.organisation import PROVINCE
from shared.eventstore.catalogue import EventCatalogue
from shared.settings import DEV_JWT_KEY, Settings
from shared.tenancy import NATIONAL


def institution(tenant: str = "51", pdm: str = "5171") -> Institution:
    return Institution.register(
        tenant=tenant,
        name="Panti Asuhan Muhammadiyah Denpasar",
        kind=InstitutionType.LKSA,
        owner=Owner.MUHAMMADIYAH,
        pdm=pdm,
    )


# --- registry: institutions -------------------------------------------------------------


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


# --- hr: social workers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "today", "adult"),
    [
        (date(2000, 3, 15), date(2018, 3, 14), False),  # the day before the 18th birthday
        (date(2000, 3, 15), date(2018, 3, 15), True),  # the 18th birthday
        (date(2000, 3, 15), date(2018, 3, 16), True),
        (date(2004, 2, 29), date(2022, 2, 28), False),  # born on a leap day
        (date(2004, 2, 29), date(2022, 3, 1), True),
        (date(2010, 1, 1), date(2024, 6, 1), False),
    ],
)
def test_a_social_worker_must_be_at_least_18(birth_date: date, today: date, adult: bool) -> None:
    def hire() -> SocialWorker:
        return SocialWorker.register(
            tenant="51", full_name="Ahmad Fauzi", birth_date=birth_date, pdm="5171", today=today
        )

    if adult:
        assert hire().birth_date == birth_date
    else:
        with pytest.raises(RuleBroken) as raised:
            hire()
        assert raised.value.field == "birth_date"


# --- cases: complaints ------------------------------------------------------------------


def test_a_complaint_about_an_unknown_institution_is_refused() -> None:
    concerned = uuid4()
    with pytest.raises(RuleBroken) as raised:
        Complaint.receive(
            channel=Channel.WHATSAPP,
            summary="Keluhan tentang lembaga yang tidak terdaftar.",
            concerns_child=True,
            institution_id=concerned,
            institution=None,
            received_in=PROVINCE,
        )
    assert raised.value.field == "institution_id"
    assert str(concerned) in raised.value.detail


def test_a_complaint_may_name_a_known_institution_or_none() -> None:
    concerned = uuid4()
    about = Complaint.receive(
        channel=Channel.WALK_IN,
        summary="Anak asuh tidak mendapat jadwal sekolah.",
        concerns_child=True,
        institution_id=concerned,
        institution=KnownInstitution(concerned, "Panti Asuhan Muhammadiyah", "active"),
        received_in=PROVINCE,
    )
    assert about.institution_id == concerned
    general = Complaint.receive(
        channel=Channel.EMAIL,
        summary="Pertanyaan umum tentang layanan.",
        concerns_child=False,
        institution_id=None,
        institution=None,
        received_in=PROVINCE,
    )
    assert general.institution_id is None


# --- tokens -----------------------------------------------------------------------------

DEV = Settings()


def test_a_minted_token_verifies_to_its_principal() -> None:
    token = mint_dev_token(
        DEV, sub="operator-1", tenant="51", roles=[Role.PDM_OPERATOR, Role.AUDITOR], pdm="5171"
    )
    principal = TokenVerifier(DEV).verify(token)
    assert principal.sub == "operator-1"
    assert principal.tenant == "51"
    assert principal.roles == frozenset({Role.PDM_OPERATOR, Role.AUDITOR})
    assert principal.pdm == "5171"
    assert not principal.is_national


def test_a_national_token_verifies() -> None:
    token = mint_dev_token(DEV, sub="pp", tenant=NATIONAL, roles=[Role.NATIONAL_ADMIN])
    principal = TokenVerifier(DEV).verify(token)
    assert principal.is_national
    assert principal.pdm is None


def test_an_expired_token_is_rejected() -> None:
    token = mint_dev_token(DEV, sub="late", tenant="51", roles=[Role.AUDITOR], ttl_seconds=-60)
    with pytest.raises(InvalidToken, match="expired"):
        TokenVerifier(DEV).verify(token)


def test_a_token_signed_with_another_key_is_rejected() -> None:
    forged = jwt.encode(
        {"sub": "x", "tenant": "51", "roles": ["wilayah_admin"], "exp": int(time.time()) + 60},
        "not-the-key-" * 4,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(forged)
    genuine = mint_dev_token(DEV, sub="x", tenant="51", roles=[Role.WILAYAH_ADMIN])
    with pytest.raises(InvalidToken):
        TokenVerifier(Settings(jwt_secret="another-secret-" * 3)).verify(genuine)


def test_a_token_for_an_unknown_tenant_is_rejected() -> None:
    token = jwt.encode(
        {"sub": "x", "tenant": "99", "roles": ["wilayah_admin"], "exp": int(time.time()) + 60},
        DEV_JWT_KEY,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken, match="unknown tenant"):
        TokenVerifier(DEV).verify(token)
    with pytest.raises(ValueError, match="unknown tenant"):
        mint_dev_token(DEV, sub="x", tenant="99", roles=[Role.WILAYAH_ADMIN])


def test_a_token_with_an_unknown_role_or_without_expiry_is_rejected() -> None:
    unknown_role = jwt.encode(
        {"sub": "x", "tenant": "51", "roles": ["superuser"], "exp": int(time.time()) + 60},
        DEV_JWT_KEY,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(unknown_role)
    no_expiry = jwt.encode(
        {"sub": "x", "tenant": "51", "roles": ["auditor"]}, DEV_JWT_KEY, algorithm="HS256"
    )
    with pytest.raises(InvalidToken):
        TokenVerifier(DEV).verify(no_expiry)


def test_minting_is_refused_when_a_production_key_is_configured() -> None:
    production = Settings(jwt_secret="other")
    assert production.is_production_key
    assert not DEV.is_production_key
    with pytest.raises(PermissionError):
        mint_dev_token(production, sub="x", tenant="51", roles=[Role.WILAYAH_ADMIN])
    with pytest.raises(PermissionError):
        mint_dev_token(
            Settings(jwks_url="https://idp.example/jwks"),
            sub="x",
            tenant="51",
            roles=[Role.WILAYAH_ADMIN],
        )


# --- settings ---------------------------------------------------------------------------


def test_settings_from_env_parse_types_and_ignore_empty_values() -> None:
    settings = Settings.from_env(
        {
            "MPKS_DATABASE_URL": "postgresql://mpks@db:5432/mpks",
            "MPKS_EVENTSTORE_POOL_SIZE": "7",
            "MPKS_READMODEL_POOL_SIZE": "12",
            "MPKS_DATA_DIR": "/var/lib/mpks",
            "MPKS_NATS_URL": "",
            "MPKS_JWT_ISSUER": "",
            "UNRELATED": "ignored",
        }
    )
    assert settings.database_url == "postgresql://mpks@db:5432/mpks"
    assert settings.eventstore_pool_size == 7
    assert settings.readmodel_pool_size == 12
    assert settings.data_dir == Path("/var/lib/mpks")
    assert isinstance(settings.data_dir, Path)
    assert settings.nats_url is None
    assert settings.jwt_issuer is None
    assert settings.jwt_secret == DEV_JWT_KEY


def test_settings_from_env_rejects_a_malformed_number() -> None:
    with pytest.raises(msgspec.ValidationError, match="int"):
        Settings.from_env({"MPKS_EVENTSTORE_POOL_SIZE": "many"})


# --- event catalogue --------------------------------------------------------------------


def test_the_catalogue_names_events_aggregate_dot_event_and_lists_fields() -> None:
    catalogue = EventCatalogue([("Institution", Institution), ("SocialWorker", SocialWorker)])
    # The event classes are generated from the decorated methods, invisible to type checkers.
    assert catalogue.name_of(getattr(Institution, "Registered")) == "Institution.Registered"  # noqa: B009
    assert catalogue.class_of("Institution.Suspended") is getattr(Institution, "Suspended")  # noqa: B009
    assert catalogue.aggregate_class("Institution") is Institution

    specs = {spec.name: spec for spec in catalogue.specs()}
    assert set(specs) == {
        "Institution.Registered",
        "Institution.Renamed",
        "Institution.Suspended",
        "Institution.Reinstated",
        "SocialWorker.Registered",
    }
    assert specs["Institution.Registered"].version == 1
    assert specs["Institution.Registered"].fields == {
        "name": "str",
        "kind": "InstitutionType",
        "owner": "Owner",
        "pdm": "str",
        "address": "str | None",
    }
    assert specs["Institution.Renamed"].fields == {"name": "str"}
    assert specs["SocialWorker.Registered"].fields["birth_date"] == "date"


def test_the_catalogue_refuses_unknown_events_and_dotted_aggregate_names() -> None:
    catalogue = EventCatalogue([("Institution", Institution)])
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue.name_of(getattr(SocialWorker, "Registered"))  # noqa: B009
    with pytest.raises(ValueError, match="must not contain a dot"):
        EventCatalogue([("registry.Institution", Institution)])
