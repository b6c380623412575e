"""Sealing personal values: AES-GCM under a subject's key, bound to its service, tenant,
subject and field; subject keys wrapped under the master key; the marker on event fields."""

from __future__ import annotations

import base64
from typing import Annotated, Any
from uuid import uuid4

import pytest

from services.cases.domain.complaint import Channel, Complaint
from services.hr.domain.social_worker import SocialWorker
from shared.domain.aggregate import AggregateRoot
from shared.eventstore.catalogue import EventCatalogue
from shared.personal.cipher import (
    CannotOpen,
    MissingMasterKey,
    master_key,
    new_data_key,
    open_value,
    seal_value,
    unwrap_key,
    wrap_key,
)
from shared.personal.fields import WITHHELD, Personal, personal_fields
from shared.personal.keys import KeyNotLoaded, SubjectKeys
from shared.personal.masking import mask
from shared.settings import Settings

WHERE = {"service": "hr", "tenant": "35", "subject": "s-1", "field": "full_name"}


def sealed(value: Any = "Siti Aminah", key: bytes | None = None, **where: str) -> dict[str, str]:
    return seal_value(key or KEY, value, **{**WHERE, **where})


KEY = new_data_key()


def test_a_sealed_value_opens_with_its_key_and_context_only() -> None:
    value = sealed()
    assert "Siti" not in str(value)
    assert value["subject"] == "s-1"
    assert open_value(KEY, value, service="hr", tenant="35", field="full_name") == "Siti Aminah"
    # Two seals of the same value differ (a fresh nonce each): equal names do not show.
    assert sealed()["$enc"] != value["$enc"]

    with pytest.raises(CannotOpen):
        open_value(new_data_key(), value, service="hr", tenant="35", field="full_name")
    # Moved to another field, tenant, service or subject: it does not open.
    for context in (
        {"service": "hr", "tenant": "35", "field": "pdm"},
        {"service": "hr", "tenant": "36", "field": "full_name"},
        {"service": "cases", "tenant": "35", "field": "full_name"},
    ):
        with pytest.raises(CannotOpen):
            open_value(KEY, value, **context)
    with pytest.raises(CannotOpen):
        open_value(KEY, {**value, "subject": "s-2"}, service="hr", tenant="35", field="full_name")


def test_a_tampered_value_does_not_open() -> None:
    value = sealed()
    raw = bytearray(base64.b64decode(value["$enc"]))
    raw[-1] ^= 1
    tampered = {**value, "$enc": base64.b64encode(bytes(raw)).decode()}
    with pytest.raises(CannotOpen):
        open_value(KEY, tampered, service="hr", tenant="35", field="full_name")
    with pytest.raises(CannotOpen):
        open_value(KEY, {**value, "$enc": "not base64!"}, service="hr", tenant="35", field="f")


def test_a_subject_key_unwraps_under_its_master_key_and_subject_only() -> None:
    master = new_data_key()
    wrapped = wrap_key(master, KEY, service="hr", tenant="35", subject="s-1")
    assert unwrap_key(master, wrapped, service="hr", tenant="35", subject="s-1") == KEY
    with pytest.raises(CannotOpen):
        unwrap_key(new_data_key(), wrapped, service="hr", tenant="35", subject="s-1")
    with pytest.raises(CannotOpen):
        unwrap_key(master, wrapped, service="hr", tenant="35", subject="s-2")


def test_the_master_key_comes_from_settings_and_production_needs_one() -> None:
    configured = base64.b64encode(bytes(range(32))).decode()
    assert master_key(Settings(master_key=configured)) == bytes(range(32))
    # Development: derived from the development key, the same in every process.
    assert master_key(Settings()) == master_key(Settings())
    assert len(master_key(Settings())) == 32
    with pytest.raises(MissingMasterKey, match="MPKS_MASTER_KEY"):
        master_key(Settings(jwt_secret="a-real-secret"))
    with pytest.raises(MissingMasterKey, match="32 bytes"):
        master_key(Settings(master_key=base64.b64encode(b"short").decode()))


def test_the_marker_names_the_personal_fields_and_their_subject() -> None:
    assert personal_fields(SocialWorker.Registered) == {"full_name": Personal("originator_id")}
    assert personal_fields(Complaint.Received) == {
        "complainant_name": Personal("complainant_subject"),
        "complainant_contact": Personal("complainant_subject"),
    }

    class Odd(AggregateRoot):
        class Happened(AggregateRoot.Event):
            age: Annotated[int, Personal()]

    with pytest.raises(TypeError, match="holds text"):
        personal_fields(Odd.Happened)


def test_a_reader_without_keys_gets_a_sealed_value_withheld() -> None:
    catalogue = EventCatalogue([("Complaint", Complaint)])
    subject = str(uuid4())
    data = {
        "channel": Channel.PHONE.value,
        "summary": "Laporan.",
        "concerns_child": False,
        "institution_id": None,
        "pdm": None,
        "complainant_subject": subject,
        "complainant_name": sealed("Budi", subject=subject, field="complainant_name"),
        "complainant_contact": None,
    }
    event = catalogue.decode(
        "Complaint.Received",
        3,
        data,
        originator_id=uuid4(),
        originator_version=1,
        timestamp="2026-01-01T00:00:00+00:00",
    )
    assert (event.complainant_name, event.complainant_contact) == (WITHHELD, None)


def test_keys_seal_and_open_only_once_loaded_and_a_live_key_is_trusted_for_a_while() -> None:
    now = [0.0]
    keys = SubjectKeys("hr", new_data_key(), cache_seconds=30, clock=lambda: now[0])
    with pytest.raises(KeyNotLoaded):
        keys.seal("35", "s-1", "full_name", "Siti")
    wrapped = wrap_key(keys._master, KEY, service="hr", tenant="35", subject="s-1")
    keys._keep("35", [{"subject": "s-1", "wrapped": wrapped}, {"subject": "s-2", "wrapped": None}])
    value = keys.seal("35", "s-1", "full_name", "Siti")
    assert keys.open("35", "full_name", value) == "Siti"
    # An erased subject opens as erased, for good; a live key is looked up again later.
    assert keys.open("35", "full_name", {**value, "subject": "s-2"}) == "[erased]"
    now[0] = 31.0
    with pytest.raises(KeyNotLoaded):
        keys.open("35", "full_name", value)
    assert keys.open("35", "full_name", {**value, "subject": "s-2"}) == "[erased]"


def test_a_key_read_while_its_erasure_was_in_flight_does_not_come_back_to_life() -> None:
    keys = SubjectKeys("hr", new_data_key())
    wrapped = wrap_key(keys._master, KEY, service="hr", tenant="35", subject="s-1")
    keys._keep("35", [{"subject": "s-1", "wrapped": wrapped}])
    value = keys.seal("35", "s-1", "full_name", "Siti")
    keys.erased("35", "s-1")
    # A projection's read that began before the erasure committed still saw the key.
    keys._keep("35", [{"subject": "s-1", "wrapped": wrapped}])
    assert keys.open("35", "full_name", value) == "[erased]"
    with pytest.raises(KeyNotLoaded):
        keys.seal("35", "s-1", "full_name", "Siti")


def test_after_a_lost_listening_connection_live_keys_are_looked_up_again() -> None:
    """Announcements of erasures may have been missed: every live key goes, erasures stay."""
    keys = SubjectKeys("hr", new_data_key())
    wrapped = wrap_key(keys._master, KEY, service="hr", tenant="35", subject="s-1")
    keys._keep("35", [{"subject": "s-1", "wrapped": wrapped}, {"subject": "s-2", "wrapped": None}])
    value = keys.seal("35", "s-1", "full_name", "Siti")
    keys.forget_live()
    with pytest.raises(KeyNotLoaded):
        keys.open("35", "full_name", value)
    assert keys.open("35", "full_name", {**value, "subject": "s-2"}) == "[erased]"


def test_the_key_cache_is_bounded() -> None:
    keys = SubjectKeys("hr", new_data_key(), cache_size=2)
    keys._keep("35", [{"subject": f"s-{i}", "wrapped": None} for i in range(3)])
    assert len(keys._cache) == 2
    assert ("35", "s-0") not in keys._cache


@pytest.mark.parametrize(
    ("name", "masked"),
    [("Siti Aminah", "S*** A***"), ("Budi", "B***"), (None, None), ("[erased]", "[erased]")],
)
def test_list_views_mask_each_word(name: str | None, masked: str | None) -> None:
    assert mask(name) == masked
