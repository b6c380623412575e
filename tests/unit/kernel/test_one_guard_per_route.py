"""A route's guards of every layer run as one (Litestar copies the route handler once per
guard and request): all of them, in the order of their layers, the first refusal ending the
request as before."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Litestar, get
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import TestClient
from litestar.types import Guard

from shared.http.security import one_guard_per_route


def _app(ran: list[str], refuse: str | None) -> Litestar:
    def named(name: str) -> Guard:
        async def guard(
            connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
        ) -> None:
            ran.append(name)
            if name == refuse:
                raise PermissionDeniedException(detail=f"{name} refuses")

        return guard

    class Things(Controller):
        path = "/things"
        guards = [named("controller")]

        @get("/", guards=[named("route")], sync_to_thread=False)
        def things(self) -> list[str]:
            return ["a thing"]

    app = Litestar([Things], guards=[named("app first"), named("app second")])
    one_guard_per_route(app)
    return app


def test_every_layer_s_guards_run_once_in_order_through_one_guard() -> None:
    ran: list[str] = []
    app = _app(ran, refuse=None)
    things = next(
        h for r in app.routes for h in getattr(r, "route_handlers", ()) if "/things" in h.paths
    )
    assert len(things.resolve_guards()) == 1
    with TestClient(app) as client:
        assert client.get("/things").json() == ["a thing"]
    assert ran == ["app first", "app second", "controller", "route"]


def test_the_first_refusal_ends_the_request() -> None:
    ran: list[str] = []
    with TestClient(_app(ran, refuse="app second")) as client:
        answer = client.get("/things")
    assert answer.status_code == 403
    assert ran == ["app first", "app second"]
