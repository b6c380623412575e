"""The unit of work a handler changes aggregates through: it loads them (refusing records
outside the actor's reach, and stale versions), collects new ones, and commits all their new
events atomically with the command's idempotency record.

The rules every store shares live here; a store (PostgreSQL, or memory in unit tests) says
only how to load and how to save.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TypeVar
from uuid import UUID

import msgspec

from shared.domain.aggregate import AggregateRoot
from shared.domain.errors import Conflict, NotFound
from shared.domain.messages import Message, record_name
from shared.domain.organisation import Scope, check_scope

A = TypeVar("A", bound=AggregateRoot)


class IdempotencyRecord(msgspec.Struct, frozen=True):
    """A command's Idempotency-Key with what it was for and its reply: a retry with the same
    key gets the same reply and records nothing twice."""

    key: str
    fingerprint: str
    reply: bytes


class ConcurrentWrite(Exception):
    """The commit lost a race: another command changed one of the records, or recorded the
    same Idempotency-Key, since this one loaded them."""


class StaleRead(ConcurrentWrite):
    """A record the command decided on without changing it (`consult`) changed since it
    was read: nothing was recorded, and the command may run again on what is recorded now."""


class UnitOfWork(ABC):
    def __init__(
        self, tenant: str, actor: Scope, expected_versions: Mapping[UUID, int] | None = None
    ) -> None:
        self.tenant = tenant
        self.actor = actor
        # The versions the client last saw (If-Match), by record id.
        self.expected_versions = dict(expected_versions or {})
        self._seen: dict[UUID, AggregateRoot] = {}
        # The records consulted, at the version read (0: none recorded): checked at commit.
        self._consulted: dict[UUID, int] = {}

    async def get(self, cls: type[A], aggregate_id: UUID) -> A:
        """The aggregate as of now, or 404; 403 outside the actor's scope; 409 when the
        client saw another version."""
        found = self._seen.get(aggregate_id) or await self._load(aggregate_id)
        if not isinstance(found, cls):
            raise NotFound(Message("{record} not found", record=_name(cls, aggregate_id)))
        # Before any other check, so an actor learns nothing more of a record outside its
        # scope (its version, its state) than that it is out of reach.
        if not self.actor.covers(found.scope):
            check_scope(self.actor, found.scope, _name(cls, aggregate_id))
        expected = self.expected_versions.get(aggregate_id)
        if expected is not None and expected != found.version:
            raise Conflict(
                Message(
                    "{record} is at version {version}, not {expected}: reload it and try again",
                    record=_name(cls, aggregate_id),
                    version=found.version,
                    expected=expected,
                )
            )
        self._seen[aggregate_id] = found
        return found

    async def consult(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """A record a rule consults but the command does not change (the council that
        will decide a proposal, say), or None: loaded whatever the actor's scope, since
        reading its state to refuse or accept a command shows the actor nothing of it. Were
        the command to change it anyway, the commit would still refuse it out of scope.

        The store may answer from a cache: the commit refuses the command (StaleRead) if the
        record changed since the version read."""
        found = self._seen.get(aggregate_id)
        if found is None:
            found = await self._consult(aggregate_id)
            self._consulted[aggregate_id] = found.version if found is not None else 0
        if not isinstance(found, cls):
            return None
        self._seen[aggregate_id] = found
        return found

    def add(self, aggregate: AggregateRoot) -> None:
        """A new aggregate, saved at commit."""
        self._seen[aggregate.id] = aggregate

    @property
    def changed(self) -> list[AggregateRoot]:
        return [a for a in self._seen.values() if a.pending_events]

    async def commit(self, idempotency: IdempotencyRecord | None) -> int | None:
        """Saves every new event and the idempotency record in one transaction; returns the
        position of the last event in the tenant log (None: nothing recorded). Every record
        it saves, new or changed, must lie inside the actor's scope as the write side knows
        it: the one check no handler can forget. Raises ConcurrentWrite on a lost race."""
        changed = self.changed
        for aggregate in changed:
            if not self.actor.covers(aggregate.scope):
                check_scope(self.actor, aggregate.scope, _name(type(aggregate), aggregate.id))
        # A consulted record the command changes after all is checked by its own versions.
        writes = {a.id for a in changed}
        reads = {i: v for i, v in self._consulted.items() if i not in writes}
        return await self._save(changed, idempotency, reads)

    def forget_consulted(self) -> bool:
        """The command is about to run again (refused, or its commit found a record it
        consulted changed): whether any record it consulted may have been read from a
        cache, now dropped from it, so the next run reads them as recorded."""
        return False

    @abstractmethod
    async def _load(self, aggregate_id: UUID) -> AggregateRoot | None: ...

    async def _consult(self, aggregate_id: UUID) -> AggregateRoot | None:
        """A consulted record: as `_load`, or from a cache if the store keeps one."""
        return await self._load(aggregate_id)

    @abstractmethod
    async def _save(
        self,
        aggregates: Sequence[AggregateRoot],
        idempotency: IdempotencyRecord | None,
        reads: Mapping[UUID, int],
    ) -> int | None:
        """Saves `aggregates`' new events and `idempotency` at once, unless a record of
        `reads` (id: the version consulted) changed since (StaleRead)."""

    @abstractmethod
    async def find_idempotency_record(self, key: str) -> IdempotencyRecord | None: ...

    @abstractmethod
    async def head(self) -> int | None:
        """The last position of the tenant log."""


def _name(cls: type[AggregateRoot], aggregate_id: UUID) -> str:
    """How messages name the record (built only for a refusal: it costs on every command)."""
    return record_name(cls.__name__.lower(), aggregate_id)
