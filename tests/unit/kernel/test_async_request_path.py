"""Nothing on a service's request path runs in Litestar's thread pool: a sync guard, a sync
dependency with `sync_to_thread`, a sync handler or hook each cost two thread hops (and a
fight for the GIL with the event loop) on every request."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.utils.sync import AsyncCallable, is_async_callable

from services.bootstrap import SERVICES, build_app, settings_from_env


def _in_a_thread(fn: object) -> bool:
    # Litestar wraps a sync hook in AsyncCallable, which runs it with anyio.to_thread.
    return isinstance(fn, AsyncCallable) or not is_async_callable(fn)  # type: ignore[arg-type]


def _handlers(app: Litestar) -> list[HTTPRouteHandler]:
    return [
        handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if isinstance(handler, HTTPRouteHandler)
    ]


@pytest.fixture(params=sorted(SERVICES))
def app(request: pytest.FixtureRequest) -> Litestar:
    settings = settings_from_env(
        {"MPKS_DATABASE_URL": "postgresql://u@db/x", "MPKS_NATS_URL": "nats://nats:4222"}
    )
    return build_app(request.param, settings)


def test_every_guard_is_a_coroutine(app: Litestar) -> None:
    sync = [
        f"{handler}: {getattr(guard, '__name__', guard)}"
        for handler in _handlers(app)
        for layer in handler.ownership_layers
        for guard in layer.guards or []
        if _in_a_thread(guard)
    ]
    assert sync == []


def test_no_dependency_handler_or_hook_runs_in_a_thread(app: Litestar) -> None:
    threaded = []
    for handler in _handlers(app):
        for name, provide in handler.resolve_dependencies().items():
            if provide.has_sync_callable and provide.sync_to_thread:
                threaded.append(f"{handler}: dependency {name}")
        if handler.has_sync_callable and handler.sync_to_thread:
            threaded.append(f"{handler}: handler")
        threaded += [
            f"{handler}: {name} of {layer}"
            for layer in handler.ownership_layers
            for name in ("before_request", "after_request", "after_response")
            if (hook := getattr(layer, name, None)) is not None and _in_a_thread(hook)
        ]
    assert threaded == []
    assert len(_handlers(app)) > len(app.routes)  # the walk saw the routes' handlers
