"""Read-only roles, as the app's first guard enforces them: whatever a write route declares,
an auditor (or a service) token is refused, and a token holding a writing role as well acts
with that role alone. The e2e walk (tests/e2e/test_access_log.py) covers today's routes;
this covers a route that wrongly lets auditors in."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get, post
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from shared.auth import Principal, Role
from shared.http.problems import EXCEPTION_HANDLERS
from shared.http.security import actor_scope, read_only_guard, requires_roles

# A route that wrongly grants the read-only roles on its write.
CARELESS = requires_roles(Role.AUDITOR, Role.SERVICE, Role.PDM_OPERATOR, Role.WILAYAH_ADMIN)


@post("/v1/tenants/{tenant:str}/things", guards=[CARELESS], status_code=200)
async def write(request: Request[Any, Any, Any]) -> dict[str, str]:
    scope = actor_scope(request)
    return {"pdm": str(scope.pdm)}


@get("/v1/tenants/{tenant:str}/things", guards=[CARELESS])
async def read() -> dict[str, str]:
    return {"read": "yes"}


def _app(principal: Principal) -> Litestar:
    def authenticated(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            scope["user"] = principal
            await app(scope, receive, send)

        return middleware

    return Litestar(
        route_handlers=[write, read],
        guards=[read_only_guard],
        middleware=[authenticated],
        exception_handlers=EXCEPTION_HANDLERS,
    )


def _principal(*roles: Role, tenant: str = "35", pdm: str | None = None) -> Principal:
    return Principal(sub="someone", tenant=tenant, roles=frozenset(roles), pdm=pdm)


@pytest.mark.parametrize(
    "principal",
    [
        _principal(Role.AUDITOR),
        _principal(Role.AUDITOR, tenant="national"),
        _principal(Role.SERVICE, tenant="national"),
        _principal(Role.AUDITOR, Role.SERVICE, tenant="national"),
    ],
    ids=["auditor", "national auditor", "service", "auditor and service"],
)
def test_read_only_tokens_are_refused_on_a_write_route_that_lets_them_in(
    principal: Principal,
) -> None:
    with TestClient(_app(principal)) as client:
        refused = client.post("/v1/tenants/35/things", headers={"Accept-Language": "en"})
        assert refused.status_code == 403, refused.text
        assert "read and never write" in refused.json()["detail"]
        # Reading is theirs.
        assert client.get("/v1/tenants/35/things").status_code == 200


def test_auditing_adds_nothing_to_what_another_role_writes() -> None:
    # Had the auditor role counted, the route would grant it and the scope would be the
    # province; it does not, so the operator writes as an operator: in its PDM.
    operator = _principal(Role.PDM_OPERATOR, Role.AUDITOR, pdm="3578")
    with TestClient(_app(operator)) as client:
        r = client.post("/v1/tenants/35/things")
    assert r.status_code == 200, r.text
    assert r.json() == {"pdm": "3578"}
