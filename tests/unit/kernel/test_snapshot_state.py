"""What a snapshot stores of a record (`shared.audit.snapshots.StateCodec`): the record's
values with their types, personal values only in the sealed form their events store (never
opened, so never plaintext at rest), and nothing read from a snapshot of an earlier format,
whose personal values could not be opened."""

from __future__ import annotations

from datetime import date

import msgspec

from services.hr.domain.social_worker import SocialWorker
from shared.audit.snapshots import SealedValue, StateCodec
from shared.eventstore.catalogue import EventCatalogue
from shared.personal.fields import WITHHELD

SEALED = {"$enc": "bm9uY2V8Y2lwaGVydGV4dA==", "subject": "8c1f0d7e-0000-4000-8000-000000000001"}


def test_a_snapshot_keeps_a_personal_value_sealed_and_gives_the_record_back() -> None:
    codec = StateCodec(EventCatalogue([("SocialWorker", SocialWorker)]))
    worker = SocialWorker(
        full_name=SealedValue("full_name", SEALED), birth_date=date(1990, 4, 2), pdm="3578"
    )
    state = codec.encode(worker)
    assert SEALED["$enc"].encode() in state

    restored = codec.decode("SocialWorker", state)
    assert isinstance(restored, SocialWorker)
    assert isinstance(restored.full_name, SealedValue)
    # Unopened, it reads as withheld, and keeps what opens it.
    assert restored.full_name == WITHHELD
    assert (restored.full_name.field, restored.full_name.sealed) == ("full_name", SEALED)
    assert restored.birth_date == date(1990, 4, 2)
    assert (restored.id, restored.version) == (worker.id, worker.version)


def test_a_snapshot_of_the_earlier_format_is_not_read() -> None:
    codec = StateCodec(EventCatalogue([("SocialWorker", SocialWorker)]))
    worker = SocialWorker(full_name=WITHHELD, birth_date=date(1990, 4, 2), pdm=None)
    earlier = msgspec.json.decode(codec.encode(worker))
    del earlier["$format"]
    assert codec.decode("SocialWorker", msgspec.json.encode(earlier)) is None
