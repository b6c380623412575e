"""Commands: what a user, another system or a process manager asks a service to do.

A command is a msgspec Struct holding everything the handler needs, the id of the record it
acts on included, so the same command can come over HTTP or from a process manager. A field
named `reason` is the why of the change: it is recorded in every event's metadata.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

import msgspec


class Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # What the docs page offers to send: summary -> a command valid in province 35.
    examples: ClassVar[dict[str, Command]] = {}


def reason_of(command: Command) -> str | None:
    """The why a command gives (its `reason` field), recorded with its events."""
    reason = getattr(command, "reason", None)
    return reason if isinstance(reason, str) else None


class Accepted(msgspec.Struct, frozen=True):
    """The reply to a command: the record it acted on and its new version (its ETag)."""

    id: UUID
    version: int
