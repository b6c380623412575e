"""Turns an HTTP request into a command run: context from the token, Idempotency-Key,
If-Match, and the outcome as the response."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response

from shared.domain.errors import InvalidInput
from shared.domain.messages import Message
from shared.eventstore.commands import CommandRunner, Handler, fingerprint
from shared.eventstore.context import CommandContext
from shared.http.middleware import TRACE_ID
from shared.http.reads import POSITION_HEADER
from shared.http.security import actor_scope, principal_of

IDEMPOTENCY_HEADER = "Idempotency-Key"
CAUSATION_HEADER = "X-Causation-ID"
T = TypeVar("T")


class CommandAccepted(msgspec.Struct, frozen=True):
    """The usual reply to a command: the record and its new version (its ETag)."""

    id: UUID
    version: int


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """`If-Match: "3"` (the ETag of a read): the version the client last saw."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(
            Message("If-Match must be the version (ETag) of the record"),
            field="If-Match",
            source="header",
        ) from None


def causation_id(request: Request[Any, Any, Any]) -> str | None:
    """The message that caused this command. Unlike the correlation id it is refused, not
    replaced, when malformed: it names another message, and a made-up one would be a false
    link in the audit trail."""
    raw = request.headers.get(CAUSATION_HEADER.lower())
    if raw is None:
        return None
    if not TRACE_ID.fullmatch(raw):
        raise InvalidInput(
            Message(
                "{header} must be 1 to {most} printable ASCII characters",
                header=CAUSATION_HEADER,
                most=128,
            ),
            field=CAUSATION_HEADER,
            source="header",
        )
    return raw


async def execute(
    request: Request[Any, Any, Any],
    runner: CommandRunner,
    tenant: str,
    handler: Handler,
    reply: type[T],
    *,
    payload: msgspec.Struct | None = None,
    reason: str | None = None,
) -> Response[T]:
    principal = principal_of(request)
    ctx = CommandContext(
        tenant=tenant,
        actor=principal.sub,
        correlation_id=request.state.get("correlation_id") or "",
        causation_id=causation_id(request),
        reason=reason,
        scope=actor_scope(request),
    )
    key = request.headers.get(IDEMPOTENCY_HEADER.lower())
    if key is not None and not (0 < len(key) <= 200):
        raise InvalidInput(
            Message("{header} must be 1 to {most} characters", header=IDEMPOTENCY_HEADER, most=200),
            field=IDEMPOTENCY_HEADER,
            source="header",
        )
    outcome = await runner.run(
        tenant,
        ctx,
        handler,
        idempotency_key=key,
        request_fingerprint=fingerprint(
            request.method,
            request.url.path,
            principal.sub,
            msgspec.to_builtins(payload) if payload is not None else None,
        ),
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.position is not None:
        headers[POSITION_HEADER] = str(outcome.position)
    return Response(
        msgspec.json.decode(outcome.body, type=reply),
        status_code=outcome.status,
        headers=headers,
    )
