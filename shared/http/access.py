"""The access log over HTTP (see `shared.audit.access`): which reads are recorded, and when.
Auditors read the log at `GET /v1/tenants/{tenant}/access-log` (`shared.http.kernel_controllers`).

Recorded: every read of a tenant's route (GET or HEAD under `/v1/tenants/{tenant}`) by a token
holding the auditor role, and every read of such a route that shows a restricted record,
whoever reads. The entry goes to the log of the tenant read (a national auditor reading
province 35 leaves it in 35's log), appended by the service that served the read.

The answer waits for the entry: it is recorded after the route produced its answer and
before a byte of it leaves. If it cannot be recorded, the reader gets a 503 problem instead
of the data (fail closed: an auditor's or a restricted read never goes unrecorded). Only
answers that show something are recorded: a refused or failed read (403, 404, 422, ...)
shows nothing; nor are reads of the access log's own entries (`shows_only_the_trace`).

Why: the reader may say so in `X-Access-Reason` (1 to 500 characters of text on one line:
no control characters; UTF-8, or Latin-1 if it is not UTF-8), kept as the entry's reason.

Other reads cost nothing here but a look at what they show.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from litestar import Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import AfterRequestHookHandler

from shared.audit.access import REASON_MAX_LENGTH, RecordAccess, restricted_ids
from shared.auth import Principal, Role
from shared.domain.errors import InvalidInput
from shared.domain.messages import Message
from shared.eventstore.context import CommandContext
from shared.observability import correlation_id
from shared.service_layer.messagebus import MessageBus

REASON_HEADER = "X-Access-Reason"
_READS = frozenset({"GET", "HEAD"})
# Control characters (C0, DEL, C1): a reason is one line of text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class ReadNote:
    """What the current read needs for its entry, filled as the read goes."""

    principal: Principal
    tenant: str
    route: str
    path: str
    query: str
    reason: str | None
    # The records the path names, then the restricted records the answer shows.
    record_ids: list[UUID] = field(default_factory=list)
    restricted: bool = False
    # The answer shows the access log's own entries and nothing else.
    only_the_trace: bool = False

    @property
    def recorded(self) -> bool:
        if self.restricted:
            return True
        return Role.AUDITOR in self.principal.roles and not self.only_the_trace


# The read being served. Set by `access_guard`, an app guard every routed request passes
# (so never a previous request's), read by `shown` and `access_recorder` in the same task.
_current: ContextVar[ReadNote | None] = ContextVar("mpks_read_note", default=None)


def access_reason(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    raw = connection.headers.get(REASON_HEADER.lower())
    if raw is None:
        return None
    try:
        # Header bytes arrive as Latin-1 text: a reason in UTF-8 is read as UTF-8, any
        # other as the Latin-1 HTTP once specified.
        reason = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        reason = raw
    reason = reason.strip()
    if not 0 < len(reason) <= REASON_MAX_LENGTH or _CONTROL.search(reason):
        raise InvalidInput(
            Message(
                "{header} must be 1 to {most} characters of text on one line",
                header=REASON_HEADER,
                most=REASON_MAX_LENGTH,
            ),
            field=REASON_HEADER,
            source="header",
        )
    return reason


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """An app guard: opens the note of a tenant read by a token (after the read-only guard
    and before the route's own guards, which may still refuse it: then nothing is shown and
    nothing recorded)."""
    note: ReadNote | None = None
    tenant = connection.path_params.get("tenant")
    principal = connection.scope.get("user")
    if (
        connection.scope.get("method") in _READS
        and isinstance(tenant, str)
        and isinstance(principal, Principal)
    ):
        note = ReadNote(
            principal=principal,
            tenant=tenant,
            route=str(connection.scope.get("path_template") or connection.url.path),
            path=connection.url.path,
            query=connection.url.query,
            reason=access_reason(connection),
            record_ids=[v for v in connection.path_params.values() if isinstance(v, UUID)],
        )
    _current.set(note)


def shown(records: object) -> None:
    """The kernel's reads call this with what they are about to answer (a record, or a
    list): restricted records make the read one to record."""
    note = _current.get()
    if note is None:
        return
    ids = restricted_ids(records)
    if ids:
        note.restricted = True
        note.record_ids.extend(i for i in ids if i not in note.record_ids)


def shows_personal_data() -> None:
    """The current read shows personal data unmasked (`shared.personal.masking`): it is
    recorded as a read of restricted records is."""
    note = _current.get()
    if note is not None:
        note.restricted = True


def shows_only_the_trace() -> None:
    """The current read shows access-log entries and nothing else (the access-log route, a
    page of the events feed holding only `Access.Recorded` events, or none): it reads no
    record of the tenant, only the trace of reads, and is not recorded. Recording it would
    add an entry that the next page shows, and a reader paging to the end would never get
    there."""
    note = _current.get()
    if note is not None:
        note.only_the_trace = True


def _resource(route: str) -> str:
    """`complaints` of `/v1/tenants/{tenant}/complaints/{complaint_id}`."""
    _, _, rest = route.partition("{tenant}/")
    return rest.split("/", 1)[0] or route


def access_recorder(bus: Callable[[], MessageBus]) -> AfterRequestHookHandler:
    """The app's after-request hook: records the read if it is one to record, before its
    answer is sent. A failure to record is raised, so the answer becomes its problem
    (503 when PostgreSQL is unavailable) and the data is not sent."""

    async def hook(response: Response[Any]) -> Response[Any]:
        note = _current.get()
        _current.set(None)
        if note is None or not note.recorded or (response.status_code or 200) >= 300:
            return response
        principal = note.principal
        await bus().execute(
            RecordAccess(
                token_tenant=principal.tenant,
                roles=sorted(principal.roles),
                route=note.route,
                path=note.path,
                query=note.query,
                resource=_resource(note.route),
                record_ids=note.record_ids,
                restricted_shown=note.restricted,
                reason=note.reason,
            ),
            CommandContext(
                tenant=note.tenant,
                actor=principal.sub,
                correlation_id=correlation_id.get() or "",
            ),
        )
        return response

    return hook


__all__ = ["REASON_HEADER", "access_guard", "access_recorder", "shown", "shows_only_the_trace"]
