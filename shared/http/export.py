"""`GET /v1/tenants/{tenant}/export`: the tenant's export (`shared.audit.export`) streamed as
NDJSON, every service's events in one document from whichever service is asked: its own log
from PostgreSQL, the others' from their own export (each service reads only its own log).

A client that wants no second hop asks each service for its own part
(`?service=<its name>`): that service answers from its log alone."""

from __future__ import annotations

import functools
import hashlib
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated, Any

import httpx
import msgspec
from litestar import Controller, Request, get
from litestar.exceptions import ValidationException
from litestar.params import FromPath, QueryParameter, SkipValidation
from litestar.response import Stream

from shared.audit.export import (
    MEDIA_TYPE,
    Cursor,
    End,
    ExportError,
    Section,
    Totals,
    document,
    from_log,
    parse_until,
)
from shared.auth import Role
from shared.http.security import requires_roles, tenant_guard
from shared.resilience.faults import CONNECTION_WAIT_SECONDS
from shared.runtime import ServiceRuntime

Runtime = SkipValidation[ServiceRuntime]

# Who may export a tenant (its own auditors and admins; national ones any tenant).
EXPORTERS = requires_roles(Role.AUDITOR, Role.NATIONAL_ADMIN, Role.WILAYAH_ADMIN)


class ExportController(Controller):
    path = "/v1/tenants/{tenant:str}/export"
    guards = [tenant_guard, EXPORTERS]
    tags = ["events"]

    @get(
        "/",
        summary="Every event of the tenant, across every service, as NDJSON (streamed)",
        description=(
            "Format `mpks-export/1` (README, *Tenant export*): a header line, each service's "
            "events in position order, an end line with counts, `next_from` and the SHA-256 "
            "of the lines before it. A document without its end line was cut short: resume "
            "with `from` set to the positions of the last events received."
        ),
        media_type=MEDIA_TYPE,
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        tenant: FromPath[str],
        runtime: Runtime,
        after: Annotated[
            str | None,
            QueryParameter(
                name="from",
                description="resume after these positions: `registry:120,cases:55` (a "
                "service not named starts at its beginning)",
            ),
        ] = None,
        until: Annotated[
            str | None,
            QueryParameter(
                description="cut each log before its first event that occurred after this "
                "date-time (with offset) or date (its end, UTC)",
            ),
        ] = None,
        service: Annotated[
            list[str] | None,
            QueryParameter(description="only these services (default: every one, in order)"),
        ] = None,
    ) -> Stream:
        services = list(runtime.settings.service_urls) or [runtime.name]
        try:
            if service is not None and (unknown := set(service) - set(services)):
                raise ExportError("service", f"unknown service {sorted(unknown)[0]!r}")
            wanted = [s for s in services if service is None or s in service]
            cursor = Cursor.parse(after, wanted)
            bound = parse_until(until)
        except ExportError as exc:
            raise ValidationException(
                str(exc), extra=[{"key": exc.field, "message": str(exc), "source": "query"}]
            ) from None
        authorization = request.headers.get("authorization", "")

        async def body() -> AsyncIterator[bytes]:
            # A connection for its own log, a client for the others' parts: each only when
            # asked for.
            async with AsyncExitStack() as stack:
                sections: dict[str, Section] = {}
                client: httpx.AsyncClient | None = None
                for name, position in cursor.after.items():
                    if name == runtime.name:
                        conn = await stack.enter_async_context(
                            runtime.db.acquire(timeout=CONNECTION_WAIT_SECONDS)
                        )
                        sections[name] = from_log(conn, name, tenant, position, bound)
                        continue
                    if client is None:
                        client = await stack.enter_async_context(
                            httpx.AsyncClient(
                                headers={"Authorization": authorization},
                                timeout=30,
                                verify=_tls(),
                            )
                        )
                    url = runtime.settings.service_url(name)
                    sections[name] = from_service(client, url, name, tenant, position, until)
                async for chunk in document(tenant, cursor, bound, sections):
                    yield chunk

        return Stream(body(), media_type=MEDIA_TYPE)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The clients' TLS settings (httpx's defaults), made once: making them reads the CA
    store, tens of milliseconds of every export that asks another service."""
    return httpx.create_ssl_context()


# Bytes of another service's part passed on at once (fewer, larger writes to the response).
_CHUNK = 1024 * 1024

_end = msgspec.json.Decoder(End)


def from_service(
    client: httpx.AsyncClient, url: str, service: str, tenant: str, after: int, until: str | None
) -> Section:
    """A service's events from its own export (`GET …/export?service=…`): each service reads
    only its own log. Its header and end line are left out and its lines passed on as they
    come, never split into lines one by one; the end line's counts go into this document's,
    and its digest is checked, so a cut or altered answer ends this document without an end
    line."""

    async def section(totals: Totals) -> AsyncIterator[bytes]:
        params = {"service": service, "from": f"{service}:{after}"}
        if until is not None:
            params["until"] = until
        digest = hashlib.sha256()
        async with client.stream(
            "GET", f"{url}/v1/tenants/{tenant}/export", params=params
        ) as response:
            response.raise_for_status()
            # The bytes after the last line passed on: a part of a line, or the last line
            # received (which may be the end line).
            pending = b""
            in_header = True
            passing: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                received = pending + chunk
                if in_header:
                    header_end = received.find(b"\n")
                    if header_end < 0:
                        pending = received
                        continue
                    digest.update(received[: header_end + 1])
                    received, in_header = received[header_end + 1 :], False
                # Every line but the last complete one, which may be the end line.
                cut = received.rfind(
                    b"\n", 0, len(received) - 1 if received.endswith(b"\n") else len(received)
                )
                pending = received[cut + 1 :]
                if cut >= 0:
                    passing.append(received[: cut + 1])
                    size += cut + 1
                if size >= _CHUNK:
                    lines = b"".join(passing)
                    passing, size = [], 0
                    digest.update(lines)
                    yield totals.add(lines)
            if passing:
                lines = b"".join(passing)
                digest.update(lines)
                yield totals.add(lines)
        try:
            end = _end.decode(pending)
        except msgspec.DecodeError as exc:
            raise ExportIncomplete(f"{service}'s export ended without its end line") from exc
        if end.sha256 != digest.hexdigest():
            raise ExportIncomplete(f"{service}'s export does not match its digest")
        totals.events[service] = end.services[service].events
        totals.last[service] = end.services[service].last_position

    return section


class ExportIncomplete(RuntimeError):
    """A service's part of the export did not arrive whole."""
