"""Who runs a command, in which tenant, and why: added to every event it records."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

import msgspec

from shared.domain.organisation import PROVINCE, Scope


class CommandContext(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    actor: str
    correlation_id: str
    causation_id: str | None = None
    reason: str | None = None
    command_id: UUID = msgspec.field(default_factory=uuid4)
    # How far the actor reaches (from the token); system actors reach the whole province.
    # Not recorded in events: it is a permission, not a fact about the change.
    scope: Scope = PROVINCE


_current: contextvars.ContextVar[CommandContext | None] = contextvars.ContextVar(
    "mpks_command_context", default=None
)


@contextmanager
def command_context(ctx: CommandContext) -> Iterator[CommandContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def current_scope() -> Scope | None:
    """The running command's actor scope; None outside a command (a plain read)."""
    ctx = _current.get()
    return ctx.scope if ctx is not None else None


def current_context() -> CommandContext:
    ctx = _current.get()
    if ctx is None:
        # Recording an event without knowing who caused it would break the audit trail.
        raise RuntimeError("no command context: events must be recorded inside command_context()")
    return ctx
