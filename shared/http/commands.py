"""Commands over HTTP: a route is declared (`expose`), not written. The declared route turns
the request into the command — body fields and the record id from the path — and its context
from the token, Idempotency-Key, If-Match and X-Causation-ID; runs it on the service's bus and
answers with the outcome."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.types import Guard

from shared.domain.errors import InvalidInput
from shared.domain.messages import Message
from shared.eventstore.context import CommandContext
from shared.http.middleware import TRACE_ID
from shared.http.reads import POSITION_HEADER
from shared.http.security import actor_scope, principal_of
from shared.service_layer.commands import Accepted, Command
from shared.service_layer.messagebus import MessageBus, fingerprint

# Subscripted with types known only at run time (each command's fields).
_path: Any = FromPath
_json_body: Any = JSONBody
IDEMPOTENCY_HEADER = "Idempotency-Key"
CAUSATION_HEADER = "X-Causation-ID"


def expose(
    command: type[Command],
    path: str,
    *,
    guards: Sequence[Guard],
    status_code: int = 200,
    summary: str | None = None,
) -> HTTPRouteHandler:
    """A POST route for `command` on a resource controller. Path parameters (other than the
    tenant) are command fields, the id of the record acted on; the other fields are the JSON
    body. The summary defaults to the first line of the command's docstring."""
    ids = [name for name in msgspec.structs.fields(command) if f"{{{name.name}:" in path]
    body = _body_of(command, {f.name for f in ids})
    # Read once: msgspec looks the fields up anew (type hints and all) on every call.
    body_fields = [f.name for f in msgspec.structs.fields(body)]

    async def route(
        self: object, request: Request[Any, Any, Any], **values: Any
    ) -> Response[Accepted]:
        data = values.pop("data", None)
        fields = {name: getattr(data, name) for name in body_fields}
        record_ids = {f.name: values[f.name] for f in ids}
        version = expected_version(request)
        expected = (
            {v: version for v in record_ids.values() if isinstance(v, UUID)}
            if version is not None
            else None
        )
        return await execute(
            request,
            values["bus"],
            values["tenant"],
            command(**fields, **record_ids),
            expected_versions=expected,
            status_code=status_code,
        )

    parameters = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        _param("request", Request[Any, Any, Any]),
        _param("tenant", FromPath[str]),
        *(_param(f.name, _path[f.type]) for f in ids),
        _param("bus", NamedDependency[MessageBus]),
    ]
    if body_fields:
        parameters.append(_param("data", _json_body[body]))
    route.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Response[Accepted]
    )
    route.__annotations__ = {p.name: p.annotation for p in parameters[1:]} | {
        "return": Response[Accepted]
    }
    route.__name__ = route.__qualname__ = _snake(command.__name__)
    doc = (command.__doc__ or "").strip()
    return post(
        path,
        guards=list(guards),
        status_code=status_code,
        summary=summary or (doc.splitlines()[0].rstrip(".") if doc else command.__name__),
        description=doc or None,
        # Lets a test check that every exposed command has its handler.
        opt={"command": command},
    )(route)


def _param(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _body_of(command: type[Command], ids: set[str]) -> type[msgspec.Struct]:
    """The command without its path fields: what the client sends as JSON, under the
    command's name in the API docs, with its examples."""
    fields = [_spec(f) for f in msgspec.structs.fields(command) if f.name not in ids]
    body = msgspec.defstruct(
        command.__name__,
        fields,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        module=command.__module__,
    )
    body.__doc__ = command.__doc__
    body.examples = {  # type: ignore[attr-defined]
        summary: body(**{name: getattr(example, name) for name, *_ in fields})
        for summary, example in command.examples.items()
    }
    return body


def _spec(field: msgspec.structs.FieldInfo) -> tuple[Any, ...]:
    if field.default is not msgspec.NODEFAULT:
        return (field.name, field.type, field.default)
    if field.default_factory is not msgspec.NODEFAULT:
        return (field.name, field.type, msgspec.field(default_factory=field.default_factory))
    return (field.name, field.type)


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
    bus: MessageBus,
    tenant: str,
    command: Command,
    *,
    expected_versions: dict[UUID, int] | None = None,
    status_code: int = 200,
) -> Response[Accepted]:
    principal = principal_of(request)
    ctx = CommandContext(
        tenant=tenant,
        actor=principal.sub,
        correlation_id=request.state.get("correlation_id") or "",
        causation_id=causation_id(request),
        scope=actor_scope(request),
    )
    key = request.headers.get(IDEMPOTENCY_HEADER.lower())
    if key is not None and not (0 < len(key) <= 200):
        raise InvalidInput(
            Message("{header} must be 1 to {most} characters", header=IDEMPOTENCY_HEADER, most=200),
            field=IDEMPOTENCY_HEADER,
            source="header",
        )
    outcome = await bus.execute(
        command,
        ctx,
        idempotency_key=key,
        request_fingerprint=fingerprint(
            request.method, request.url.path, principal.sub, msgspec.to_builtins(command)
        ),
        expected_versions=expected_versions,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.position is not None:
        headers[POSITION_HEADER] = str(outcome.position)
    return Response(
        msgspec.json.decode(outcome.reply, type=Accepted),
        status_code=status_code,
        headers=headers,
    )
