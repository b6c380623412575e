"""Authentication middleware and guards: every `/v1` route needs a valid token, a token
only reaches its own tenant, and each route names the roles it serves."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Guard

from shared.auth import InvalidToken, Principal, Role, TokenVerifier
from shared.tenancy import province_codes

# Routes anyone may call: health probes, metrics scrapes and the API docs.
PUBLIC_PATHS = ["^/health", "^/metrics", "^/docs", "^/schema"]


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
            raise NotAuthorizedException("a bearer token is required")
        try:
            principal = self.verifier.verify(token.strip())
        except InvalidToken as exc:
            raise NotAuthorizedException(f"invalid token: {exc}") from exc
        return AuthenticationResult(user=principal, auth=token)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("a bearer token is required")
    return user


_READ_METHODS = {"GET", "HEAD"}


def _is_preflight(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """OPTIONS (CORS preflight) carries no token by design and reads no data."""
    return connection.scope.get("method") == "OPTIONS"


def tenant_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The route's tenant must be the token's; national tokens may read any tenant."""
    tenant = connection.path_params.get("tenant")
    if tenant is None or _is_preflight(connection):
        return
    principal = principal_of(connection)
    if tenant not in province_codes():
        raise NotFoundException(f"unknown tenant {tenant!r}")
    if principal.tenant == tenant:
        return
    if principal.is_national and connection.scope.get("method") in _READ_METHODS:
        return
    raise PermissionDeniedException(
        f"this token is for tenant {principal.tenant!r}, not {tenant!r}"
    )


def national_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Routes across every tenant: national tokens only."""
    if _is_preflight(connection):
        return
    if not principal_of(connection).is_national:
        raise PermissionDeniedException("this route reads every tenant: national tokens only")


def requires_roles(*roles: Role) -> Guard:
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if _is_preflight(connection):
            return
        principal = principal_of(connection)
        if not principal.roles & allowed:
            raise PermissionDeniedException(
                f"requires one of the roles: {', '.join(sorted(allowed))}"
            )

    return guard


READERS: tuple[Role, ...] = tuple(Role)


def require_pdm_scope(principal: Principal, pdm: str) -> None:
    """A PDM-scoped operator acts only inside its own PDM."""
    if (
        principal.pdm is not None
        and principal.pdm != pdm
        and not (principal.roles & {Role.WILAYAH_ADMIN, Role.NATIONAL_ADMIN})
    ):
        raise PermissionDeniedException(f"this token acts only in PDM {principal.pdm}")
