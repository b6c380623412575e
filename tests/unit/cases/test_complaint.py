"""Cases' complaints, in memory: which institution they may name and where they sit."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.cases.domain.complaint import Channel, Complaint, KnownInstitution
from shared.domain.errors import RuleBroken
from shared.domain.organisation import PROVINCE, Scope

LKSA = uuid4()


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
