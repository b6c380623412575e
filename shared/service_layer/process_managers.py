"""Process managers: readers of events (their own service's or another's) that act by
issuing commands, in any tenant, on their service's bus.

Each command a process manager issues carries an Idempotency-Key made of the manager's name,
the message that caused it and what the command is about: a redelivered or replayed message
(a crash before the reader's position was saved, a rebuild, NATS redelivering) runs the same
commands again and gets their first replies, recording nothing twice. The caused events name
the message (`causation_id`) and keep its correlation id, so the audit trail links them.
"""

from __future__ import annotations

from functools import singledispatchmethod

import msgspec

from shared.db.pool import DbConnection
from shared.domain.organisation import PROVINCE
from shared.eventstore.context import CommandContext
from shared.eventstore.envelope import EventEnvelope
from shared.service_layer.commands import Command
from shared.service_layer.messagebus import MessageBus, Outcome, fingerprint


class ProcessManager:
    """Base of a service's process managers (`process_managers/when_<event>_<act>.py`).
    A subclass names itself and reads events like a projection does (`on`, dispatched by
    type, `shared.projections.dispatch`)."""

    name: str
    # A process manager writes no read-model table of its own.
    tables: tuple[str, ...] = ()

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events the process manager does not act on; a subclass registers those it does
        on its own `on`. `conn` is the reader's transaction, for the read-side lookups its
        rule needs."""

    async def issue(
        self, command: Command, *, tenant: str, cause: EventEnvelope, about: object = ""
    ) -> Outcome:
        """Run `command` in `tenant` because of `cause`; `about` tells apart the commands
        one message causes (e.g. the id of each record acted on)."""
        ctx = CommandContext(
            tenant=tenant,
            actor=f"process-manager:{self.name}",
            correlation_id=cause.meta.correlation_id,
            causation_id=cause.message_id,
            # A system actor reaches the whole province it acts in.
            scope=PROVINCE,
        )
        key = f"{self.name}:{cause.message_id}:{about}"
        return await self.bus.execute(
            command,
            ctx,
            idempotency_key=key,
            request_fingerprint=fingerprint(key, msgspec.to_builtins(command)),
        )
