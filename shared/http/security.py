"""Authentication middleware and guards: every `/v1` route needs a valid token, a token
only reaches its own tenant, and each route names the roles it serves."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Guard

from shared.auth import READ_ONLY_ROLES, InvalidToken, Principal, Role, TokenVerifier
from shared.domain.messages import Message
from shared.domain.organisation import PROVINCE, Scope
from shared.tenancy import province_codes

BEARER_REQUIRED = Message("a bearer token is required")

# Routes anyone may call: health probes, metrics scrapes, the API docs, the public views of
# read models (`shared.http.public`) and the labels catalogue (`shared.http.labels`).
PUBLIC_PATHS = ["^/health", "^/metrics", "^/docs", "^/schema", "^/v1/public/", "^/v1/labels$"]


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    def __init__(self, app: ASGIApp, verifier: TokenVerifier, **kwargs: Any) -> None:
        super().__init__(app, exclude=PUBLIC_PATHS, **kwargs)
        self.verifier = verifier

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException(detail=BEARER_REQUIRED)
        try:
            principal = await self.verifier.authenticate(token.strip())
        except InvalidToken as exc:
            raise NotAuthorizedException(
                detail=Message("invalid token: {reason}", reason=str(exc))
            ) from exc
        return AuthenticationResult(user=principal, auth=token)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException(detail=BEARER_REQUIRED)
    return user


_READ_METHODS = {"GET", "HEAD"}
# What never changes anything: reads and CORS preflights.
SAFE_METHODS = frozenset({*_READ_METHODS, "OPTIONS"})


def _is_preflight(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """OPTIONS (CORS preflight) carries no token by design and reads no data."""
    return connection.scope.get("method") == "OPTIONS"


async def tenant_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The route's tenant must be the token's; national tokens may read any tenant.
    Async, like every guard: Litestar runs a sync guard in its thread pool (two thread hops
    per request)."""
    tenant = connection.path_params.get("tenant")
    if tenant is None or _is_preflight(connection):
        return
    principal = principal_of(connection)
    if tenant not in province_codes():
        raise NotFoundException(detail=Message("unknown tenant {tenant!r}", tenant=tenant))
    if principal.tenant == tenant:
        return
    if principal.is_national and connection.scope.get("method") in _READ_METHODS:
        return
    raise PermissionDeniedException(
        detail=Message(
            "this token is for tenant {own!r}, not {tenant!r}", own=principal.tenant, tenant=tenant
        )
    )


async def national_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Routes across every tenant: national tokens only."""
    if _is_preflight(connection):
        return
    if not principal_of(connection).is_national:
        raise PermissionDeniedException(
            detail=Message("this route reads every tenant: national tokens only")
        )


# Where a guard leaves the roles that let the caller in, for the actor's scope.
_GRANTED = "mpks_granted_roles"


async def read_only_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Every route's first guard (the app's): on a route that may change anything (any
    method but GET, HEAD and OPTIONS), read-only roles (auditor, service) count for nothing.
    A token holding only those is refused; a token holding others too acts with those
    others alone (the roles later guards may grant). The one place auditors are kept from
    writing, whatever a route declares."""
    if connection.scope.get("method") in SAFE_METHODS:
        return
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):
        # Public routes (no token): nothing here writes.
        return
    writers = principal.roles - READ_ONLY_ROLES
    if not writers:
        raise PermissionDeniedException(
            detail=Message(
                "this token's roles ({roles}) read and never write",
                roles=", ".join(sorted(principal.roles)),
            )
        )
    connection.state[_GRANTED] = writers


def requires_roles(*roles: Role) -> Guard:
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if _is_preflight(connection):
            return
        principal = principal_of(connection)
        # Controller and route guards (and the read-only guard) all apply: the caller holds
        # what every one of them grants.
        earlier = connection.state.get(_GRANTED)
        granted = principal.roles & allowed
        if earlier is not None:
            granted &= earlier
        if not granted:
            raise PermissionDeniedException(
                detail=Message(
                    "requires one of the roles: {roles}", roles=", ".join(sorted(allowed))
                )
            )
        connection.state[_GRANTED] = granted

    return guard


# Every role that reads the tenant's records (the service role reads only events feeds).
READERS: tuple[Role, ...] = tuple(r for r in Role if r is not Role.SERVICE)


def scope_of(principal: Principal, granted: frozenset[Role]) -> Scope:
    """How far the caller reaches on this route: the widest reach among the roles the
    route grants it. Only those roles count, so a PDM operator who is also an auditor still
    writes only in its PDM (auditing grants no writes)."""
    if granted - {Role.PDM_OPERATOR, Role.INSTITUTION_STAFF}:
        return PROVINCE
    if Role.PDM_OPERATOR in granted and principal.pdm is not None:
        return Scope(pdm=principal.pdm)
    if Role.INSTITUTION_STAFF in granted and principal.institution is not None:
        return Scope(institution=principal.institution)
    # The verifier refuses scoped roles without their claim, so only a route whose guards
    # grant disjoint roles gets here: refusing is the safe answer.
    raise PermissionDeniedException(
        detail=Message("no role this route grants says where this token may act")
    )


def actor_scope(connection: ASGIConnection[Any, Any, Any, Any]) -> Scope:
    """The caller's scope on the current route (see `scope_of`)."""
    principal = principal_of(connection)
    granted = connection.state.get(_GRANTED)
    return scope_of(principal, principal.roles if granted is None else granted)


def one_guard_per_route(app: Litestar) -> None:
    """Every route's guards, of all its layers (app, controller, route), run as one guard.

    Litestar hands each guard a copy of the route handler (`copy(self)` per guard and
    request): with four guards on a command route, the copies cost more than the guards
    themselves (cProfile under `make bench`: 1.25 s of 7.6 s spent outside the handlers).
    Our guards only read the connection; the copy is handed to each in turn, in the same
    order, and the first refusal still ends the request. Set on Litestar's resolved list
    (`resolve_guards` fills it once per handler): a Litestar without it fails at start."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            guards = handler.resolve_guards()
            if len(guards) > 1:
                handler._resolved_guards = [_all_of(tuple(guards))]


def _all_of(guards: tuple[Guard, ...]) -> Guard:
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], route_handler: BaseRouteHandler
    ) -> None:
        for each in guards:
            await each(connection, route_handler)  # type: ignore[misc]

    return guard
