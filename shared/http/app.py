"""Builds a service's Litestar app: one place wires auth, problem details, OpenAPI docs,
metrics, logs and the runtime's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from shared.auth import TokenVerifier
from shared.db.pool import DbPool
from shared.domain.organisation import Scope
from shared.http.access import access_guard, access_recorder
from shared.http.as_of import PastRecords
from shared.http.docs import OfflineSwaggerUI
from shared.http.edge import EdgeInputMiddleware, EdgeRequest
from shared.http.history import history_routes
from shared.http.kernel_controllers import KERNEL_CONTROLLERS, OPERATIONS_CONTROLLERS
from shared.http.labels import labels_route
from shared.http.middleware import RequestContextMiddleware
from shared.http.openapi import complete_contract
from shared.http.problems import EXCEPTION_HANDLERS
from shared.http.public import public_routes
from shared.http.reads import ReadModelPositions, read_your_writes
from shared.http.security import (
    JWTAuthMiddleware,
    actor_scope,
    one_guard_per_route,
    read_only_guard,
)
from shared.runtime import ServiceRuntime
from shared.service_layer.messagebus import MessageBus

DOCS_PATH = "/docs"


def create_app(runtime: ServiceRuntime) -> Litestar:
    """The service's API, or, in a worker process (`ProcessRole.WORKER`), only its health
    and metrics: a worker takes no commands and serves no reads (any other path is a 404),
    so no traffic meant for the API lands on a pod that does not serve it."""
    definition = runtime.definition
    routes: list[ControllerRouterHandler] = (
        [
            *KERNEL_CONTROLLERS,
            *definition.controllers,
            *history_routes(definition),
            labels_route(definition.labels),
            *public_routes(definition.name, definition.public, runtime.settings.public_rate_limit),
        ]
        if runtime.role.serves_api
        else [*OPERATIONS_CONTROLLERS]
    )

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    def provide_runtime() -> ServiceRuntime:
        return runtime

    def provide_bus() -> MessageBus:
        return runtime.bus

    def provide_db() -> DbPool:
        return runtime.db

    def provide_actor_scope(request: Request[Any, Any, Any]) -> Scope:
        return actor_scope(request)

    past: PastRecords | None = None

    def provide_past() -> PastRecords:
        nonlocal past
        if past is None:
            past = PastRecords(runtime.db, runtime.snapshots, runtime.keys)
        return past

    positions: ReadModelPositions | None = None

    def read_model_positions() -> ReadModelPositions:
        # Built on first use: the pool and the projections exist once the runtime started.
        nonlocal positions
        if positions is None:
            names = [p.name for p in runtime.projections.projections]
            positions = ReadModelPositions(runtime.db, runtime.name, names, runtime.logs)
        return positions

    app = Litestar(
        route_handlers=routes,
        lifespan=[lifespan],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "bus": Provide(provide_bus, sync_to_thread=False),
            "db": Provide(provide_db, sync_to_thread=False),
            "past": Provide(provide_past, sync_to_thread=False),
            "actor_scope": Provide(provide_actor_scope, sync_to_thread=False),
        },
        middleware=[
            # Outermost, so even a 401 gets a correlation id, a log line and a metric.
            DefineMiddleware(RequestContextMiddleware, metrics=runtime.metrics),
            DefineMiddleware(JWTAuthMiddleware, verifier=TokenVerifier(runtime.settings)),
            # After authentication: a caller without a token learns nothing about input rules.
            DefineMiddleware(EdgeInputMiddleware),
        ],
        request_class=EdgeRequest,
        exception_handlers=EXCEPTION_HANDLERS,
        # Every route's first guards: read-only roles write nothing; a tenant read's access
        # note opens (and the after-request hook records it: `shared.http.access`).
        guards=[read_only_guard, access_guard],
        before_request=read_your_writes(read_model_positions),
        after_request=access_recorder(provide_bus),
        # Logging is configured once by the process (JSON lines), not by Litestar.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title=f"MPKS {definition.title}",
            version="1.0.0",
            path=DOCS_PATH,
            render_plugins=[OfflineSwaggerUI(DOCS_PATH)],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"bearer": []}],
        ),
    )
    complete_contract(app)
    one_guard_per_route(app)
    return app
