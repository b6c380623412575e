"""Runs a command against a tenant's event log: in a worker thread (the library is
synchronous), inside its command context, with optimistic concurrency and idempotency."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import anyio
import anyio.to_thread
import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from shared.domain.aggregate import AggregateRoot
from shared.domain.errors import Conflict, DomainError, NotFound, RuleBroken
from shared.domain.messages import Message, record_name
from shared.domain.organisation import Scope, check_scope
from shared.eventstore.context import CommandContext, command_context, current_scope
from shared.eventstore.recorder import IdempotencyRecord
from shared.eventstore.stores import TenantApplication, TenantStores
from shared.resilience.faults import CONNECTION_WAIT_SECONDS, Unavailable


@dataclass
class Decision:
    """What a use case decided: aggregates whose new events to save and the reply."""

    body: Any
    save: list[Aggregate] = field(default_factory=list)
    status: int = 200

    @classmethod
    def saving(cls, aggregate: Aggregate, status: int = 200) -> Decision:
        """The usual reply: the record's id and its new version (its ETag)."""
        return cls({"id": str(aggregate.id), "version": aggregate.version}, [aggregate], status)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: bytes
    replayed: bool = False
    # Where the command's events sit in the tenant log: a read that waits for its read
    # models to reach it sees the command's effect (None: the command recorded nothing).
    position: int | None = None


Handler = Callable[[TenantApplication], Decision]
TAggregate = TypeVar("TAggregate", bound=Aggregate)


def fingerprint(*parts: object) -> str:
    """Identifies a request, so a reused Idempotency-Key with another body is refused."""
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


class CommandRunner:
    def __init__(self, stores: TenantStores) -> None:
        self.stores = stores
        # Never more commands in flight than pooled connections: extra threads would only
        # queue there. A command waits for its turn as long as for a connection, then is
        # told to come back (PostgreSQL down, or more load than the pool can take).
        self.limiter = anyio.CapacityLimiter(stores.pool.max_connections)
        # Admission above keeps this one from ever being the one that waits.
        self._threads = anyio.CapacityLimiter(stores.pool.max_connections)

    async def run(
        self,
        tenant: str,
        ctx: CommandContext,
        handler: Handler,
        *,
        idempotency_key: str | None = None,
        request_fingerprint: str = "",
    ) -> Outcome:
        admitted = False
        with anyio.move_on_after(CONNECTION_WAIT_SECONDS):
            await self.limiter.acquire()
            admitted = True
        if not admitted:
            raise Unavailable("PostgreSQL", "every event-store connection stayed busy")
        try:
            # Not cancellable once started: a command that committed must be reported.
            return await anyio.to_thread.run_sync(
                self._run,
                tenant,
                ctx,
                handler,
                idempotency_key,
                request_fingerprint,
                limiter=self._threads,
            )
        finally:
            self.limiter.release()

    def _run(
        self,
        tenant: str,
        ctx: CommandContext,
        handler: Handler,
        key: str | None,
        request_fingerprint: str,
    ) -> Outcome:
        app = self.stores.get(tenant)
        with command_context(ctx):
            # The key is looked up only when the command cannot go through as new (a domain
            # error, or the key's row already exists at save): a first attempt, by far the
            # common case, costs no extra round trip.
            try:
                decision = handler(app)
                _check_reach(ctx.scope, decision.save)
            except DomainError:
                earlier = app.recorder.find_idempotency_record(key) if key is not None else None
                if earlier is not None:
                    return _replay(app, earlier, request_fingerprint)
                raise
            body = msgspec.json.encode(decision.body)
            record = (
                IdempotencyRecord(key, request_fingerprint, decision.status, body)
                if key is not None
                else None
            )
            position: int | None = None
            try:
                if any(agg.pending_events for agg in decision.save) or record is None:
                    recordings = app.save(*decision.save, idempotency=record)
                    position = max((r.notification.id for r in recordings), default=None)
                else:
                    app.recorder.record_without_events(record)
            except IntegrityError:
                if key is not None:
                    earlier = app.recorder.find_idempotency_record(key)
                    if earlier is not None:
                        return _replay(app, earlier, request_fingerprint)
                raise Conflict(
                    Message(
                        "the record was changed by someone else at the same time: "
                        "reload it and try again"
                    )
                ) from None
            return Outcome(decision.status, body, position=position)


def _check_reach(actor: Scope, aggregates: list[Aggregate]) -> None:
    """Every record a command saves, new or changed, must lie inside the actor's scope as
    the write side knows the record: the one check no handler can forget."""
    for aggregate in aggregates:
        if isinstance(aggregate, AggregateRoot):
            check_scope(
                actor, aggregate.scope, record_name(type(aggregate).__name__.lower(), aggregate.id)
            )


def _replay(
    app: TenantApplication, earlier: IdempotencyRecord, request_fingerprint: str
) -> Outcome:
    if earlier.fingerprint != request_fingerprint:
        raise RuleBroken(
            Message("this Idempotency-Key was already used for a different request"),
            field="Idempotency-Key",
            source="header",
        )
    # The first attempt's events are at or before the log's head: waiting for the head is
    # enough to read them (a retry is rare; storing each key's position would cost a column
    # on every command).
    head = app.recorder.max_notification_id()
    return Outcome(earlier.status, earlier.body, replayed=True, position=head or None)


def load(
    app: TenantApplication,
    cls: type[TAggregate],
    aggregate_id: UUID,
    *,
    expected_version: int | None = None,
) -> TAggregate:
    """The aggregate as of now, or 404; 409 when the client saw another version."""
    what = record_name(cls.__name__.lower(), aggregate_id)
    missing = NotFound(Message("{record} not found", record=what))
    try:
        found: object = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        raise missing from None
    if not isinstance(found, cls):
        raise missing
    aggregate: TAggregate = found
    actor = current_scope()
    if actor is not None and isinstance(aggregate, AggregateRoot):
        # Before any other check, so an actor learns nothing more of a record outside its
        # scope (its version, its state) than that it is out of reach.
        check_scope(actor, aggregate.scope, what)
    if expected_version is not None and expected_version != aggregate.version:
        raise Conflict(
            Message(
                "{record} is at version {version}, not {expected}: reload it and try again",
                record=what,
                version=aggregate.version,
                expected=expected_version,
            )
        )
    return aggregate
