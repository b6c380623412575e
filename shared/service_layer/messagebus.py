"""One path runs every command of a service, whoever sends it (HTTP, a process manager, the
CLI): the handler in its command context, the actor's reach, idempotency, optimistic
concurrency, and the position of its events for read-your-writes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import msgspec

from shared.domain.errors import Conflict, DomainError, RuleBroken
from shared.domain.messages import Message
from shared.eventstore.context import CommandContext, command_context
from shared.service_layer.commands import Accepted, Command, reason_of
from shared.service_layer.handlers import Handler, HandlerRegistry
from shared.service_layer.ports import Actor, Clock
from shared.service_layer.unit_of_work import (
    ConcurrentWrite,
    IdempotencyRecord,
    StaleRead,
    UnitOfWork,
)


@dataclass(frozen=True)
class Outcome:
    reply: bytes
    replayed: bool = False
    # Where the command's events sit in the tenant log: a read that waits for its read
    # models to reach it sees the command's effect (None: the command recorded nothing).
    position: int | None = None


class UnitsOfWork(Protocol):
    """Opens a unit of work on a tenant's log for one command."""

    def __call__(
        self, tenant: str, ctx: CommandContext, expected_versions: Mapping[UUID, int]
    ) -> AbstractAsyncContextManager[UnitOfWork]: ...


# A port the service provides, made for the tenant a command runs in.
PortFactory = Callable[[str], object]


def fingerprint(*parts: object) -> str:
    """Identifies a request, so a reused Idempotency-Key with another body is refused."""
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


class MessageBus:
    def __init__(
        self,
        handlers: HandlerRegistry,
        units_of_work: UnitsOfWork,
        *,
        clock: Clock,
        ports: Mapping[str, PortFactory] | None = None,
    ) -> None:
        self.handlers = handlers
        self.units_of_work = units_of_work
        self.clock = clock
        self.ports = dict(ports or {})
        missing = handlers.needs() - {"uow", "actor", "clock", *self.ports}
        if missing:
            raise ValueError(f"handlers need ports nobody provides: {sorted(missing)}")

    async def execute(
        self,
        command: Command,
        ctx: CommandContext,
        *,
        idempotency_key: str | None = None,
        request_fingerprint: str = "",
        expected_versions: Mapping[UUID, int] | None = None,
    ) -> Outcome:
        """Runs `command` in `ctx.tenant`; `expected_versions` are the versions the client
        last saw of the records it names (If-Match)."""
        handler = self.handlers[type(command)]
        # The why of a change is the command's own `reason`: recorded with its events,
        # whoever sent it.
        if (reason := reason_of(command)) is not None:
            ctx = msgspec.structs.replace(ctx, reason=reason)
        with command_context(ctx):
            for run in (1, 2):
                async with self.units_of_work(ctx.tenant, ctx, expected_versions or {}) as uow:
                    provided: dict[str, Any] = {
                        "uow": uow,
                        "actor": Actor(ctx.actor, ctx.scope),
                        "clock": self.clock,
                    }
                    for name in handler.needs:
                        if name not in provided:
                            provided[name] = self.ports[name](ctx.tenant)
                    try:
                        return await self._run(
                            handler,
                            command,
                            provided,
                            uow,
                            idempotency_key,
                            request_fingerprint,
                            may_run_again=run == 1,
                        )
                    except _RunAgain:
                        continue
        raise AssertionError("a second run is never run again")

    async def _run(
        self,
        handler: Handler,
        command: Command,
        provided: Mapping[str, Any],
        uow: UnitOfWork,
        key: str | None,
        request_fingerprint: str,
        *,
        may_run_again: bool,
    ) -> Outcome:
        # The key is looked up only when the command cannot go through as new (a domain
        # error, or the key's row already exists at commit): a first attempt, by far the
        # common case, costs no extra round trip.
        try:
            aggregate = await handler(command, provided)
        except DomainError:
            if (replay := await _replay_if_retried(uow, key, request_fingerprint)) is not None:
                return replay
            if uow.forget_consulted() and may_run_again:
                # Refused on records consulted from a cache: confirmed on what is recorded.
                raise _RunAgain from None
            raise
        reply = msgspec.json.encode(Accepted(aggregate.id, aggregate.version))
        record = IdempotencyRecord(key, request_fingerprint, reply) if key is not None else None
        try:
            # Records outside the actor's reach are refused here (a DomainError): a retry of
            # an earlier, allowed command still gets its reply.
            position = await uow.commit(record)
        except DomainError:
            if (replay := await _replay_if_retried(uow, key, request_fingerprint)) is not None:
                return replay
            raise
        except ConcurrentWrite as lost:
            if (replay := await _replay_if_retried(uow, key, request_fingerprint)) is not None:
                return replay
            if isinstance(lost, StaleRead) and uow.forget_consulted() and may_run_again:
                raise _RunAgain from None
            raise Conflict(
                Message(
                    "the record was changed by someone else at the same time: "
                    "reload it and try again"
                )
            ) from None
        return Outcome(reply, position=position)


class _RunAgain(Exception):
    """The command is run again: it consulted records from a cache (`consult`) and was
    refused, or one of them changed before its commit."""


async def _replay_if_retried(
    uow: UnitOfWork, key: str | None, request_fingerprint: str
) -> Outcome | None:
    """The first attempt's reply when `key` was used before (the command cannot go
    through as new because it already did); None when there is no such attempt."""
    earlier = await uow.find_idempotency_record(key) if key is not None else None
    return await _replay(uow, earlier, request_fingerprint) if earlier is not None else None


async def _replay(uow: UnitOfWork, earlier: IdempotencyRecord, request_fingerprint: str) -> Outcome:
    if earlier.fingerprint != request_fingerprint:
        raise RuleBroken(
            Message("this Idempotency-Key was already used for a different request"),
            field="Idempotency-Key",
            source="header",
        )
    # The first attempt's events are at or before the log's head: waiting for the head is
    # enough to read them (a retry is rare; storing each key's position would cost a column
    # on every command).
    head = await uow.head()
    return Outcome(earlier.reply, replayed=True, position=head or None)
