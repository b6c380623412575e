"""Which event fields are personal, and what a personal value looks like outside its service.

An event declares a field personal with one marker naming its data subject, the person the
value is about: the aggregate itself (`originator_id`, a social worker) or another field of
the event holding the subject's id (a complainant's subject id):

    full_name: Annotated[str, Personal(subject="originator_id")]

The mapper stores such a value sealed, `{"$enc": base64(nonce|ciphertext), "subject": id}`,
and that is all the relay, the events feed, NATS and exports ever carry. Only the owning
service's readers (its aggregates, its projections, the history) open it; once the subject
is erased it opens as `ERASED`.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec

# What a personal value reads as once its subject is erased.
ERASED = "[erased]"
# What a sealed value decodes to for a reader that may not open it (another service's
# consumer): never the ciphertext in a typed field, never the plaintext.
WITHHELD = "[personal data]"
SEALED_KEY = "$enc"


class Personal(msgspec.Struct, frozen=True):
    """Marks an event field personal. `subject`: the event field holding the data subject's
    id (`originator_id`: the record itself)."""

    subject: str = "originator_id"


class Sealed(msgspec.Struct, frozen=True, rename={"ciphertext": SEALED_KEY}):
    """A personal value as stored and published: AES-256-GCM under the subject's key,
    readable only by the owning service, unreadable by anyone once the subject is erased."""

    ciphertext: str
    subject: str


def is_sealed(value: object) -> bool:
    return isinstance(value, dict) and SEALED_KEY in value


def personal_fields(event_cls: type[Any]) -> dict[str, Personal]:
    """The event class's personal fields (a personal field must hold text, possibly
    absent: `ERASED` must fit where the value was)."""
    found: dict[str, Personal] = {}
    for name, hint in typing.get_type_hints(event_cls, include_extras=True).items():
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        base, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, Personal):
                if base not in (str, str | None):
                    raise TypeError(
                        f"{event_cls.__qualname__}.{name}: a personal field holds text "
                        f"(str or str | None), not {base}"
                    )
                found[name] = extra
    return found
