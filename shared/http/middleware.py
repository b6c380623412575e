"""Per-request correlation id, one JSON log line and metrics for every request."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import on_http_exception, on_unexpected
from shared.observability import Metrics, Stopwatch, correlation_id, new_correlation_id

log = logging.getLogger("mpks.http")

HEADER = "x-correlation-id"
# The shape of a caller-given trace id (correlation or causation): printable ASCII, at most 128
# characters. It is logged and stored in every event's metadata forever, so it stays short and
# plain.
TRACE_ID = re.compile(r"[!-~]{1,128}")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = dict(scope["headers"])
        # A caller's correlation id that is not a trace id is replaced, not refused: this
        # header must never be the reason a request fails (even a 401 carries one).
        given = headers.get(HEADER.encode(), b"").decode("latin-1")
        cid = given if TRACE_ID.fullmatch(given) else new_correlation_id()
        token = correlation_id.set(cid)
        scope.setdefault("state", {})["correlation_id"] = cid
        watch = Stopwatch()
        status = 500
        started = False

        async def send_with_header(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                sent = MutableScopeHeaders.from_message(message)
                sent[HEADER] = cid
                if method == "OPTIONS" and "allow" in sent:
                    sent["allow"] = _allowed_methods(scope) or sent["allow"]
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_with_header)
            except Exception as exc:
                # Middleware below this one (authentication) raises outside the routes'
                # exception handlers; answering here keeps the correlation id header and
                # counts a 401 as a 401, not as a 500.
                if started:
                    raise
                request: Request[Any, Any, Any] = Request(scope, receive)
                response = (
                    on_http_exception(request, exc)
                    if isinstance(exc, HTTPException)
                    else on_unexpected(request, exc)
                )
                await response.to_asgi_response(app=None, request=request)(
                    scope, receive, send_with_header
                )
        finally:
            route = _route_of(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(watch.elapsed)
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "ms": round(watch.elapsed * 1000, 2),
                    }
                },
            )
            correlation_id.reset(token)


def _route_of(scope: Any) -> str:
    # The route template keeps metric labels bounded (no ids or tenants in them).
    # The full template (controller path included): a handler's own path is often just "/".
    template = scope.get("path_template")
    if template:
        return str(template)
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    return next(iter(paths)) if paths else "unmatched"


def _allowed_methods(scope: Any) -> str | None:
    """Every method of the path. Litestar answers OPTIONS from the handler group that created
    the route first, so a path served by a GET and a POST handler would announce only GET."""
    app = scope.get("litestar_app")
    paths = getattr(scope.get("route_handler"), "paths", None)
    if app is None or not paths:
        return None
    methods = app.route_handler_method_map.get(next(iter(paths)))
    return ", ".join(sorted(methods)) if methods else None
