"""RFC 9457 problem details for every error, naming the field where one is at fault."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from shared.domain.errors import Conflict, DomainError, NotFound, OutOfScope, RuleBroken
from shared.resilience.faults import Unavailable, unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str
    source: str = "body"


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    correlation_id: str | None = None


_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

# msgspec says where a value failed as `$.a.b[0]`; clients want the field path `a.b[0]`.
_AT_PATH = re.compile(r"at `\$\.?([^`]*)`")
# A missing or unknown field is reported at its parent object: the fault is the named field.
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str | None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    return Response(
        Problem(
            # No problem-specific documentation yet: RFC 9457 says "about:blank" then.
            type="about:blank",
            title=_TITLES.get(status, "Error"),
            status=status,
            detail=detail,
            instance=request.url.path,
            errors=errors,
            correlation_id=request.state.get("correlation_id"),
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        source = str(item.get("source") or "body")
        if not key:
            match = _AT_PATH.search(message)
            key = match.group(1) if match and match.group(1) else "body"
        if source == "body" and key == "data":
            # Litestar names the whole body after the handler's `data` argument.
            key = "body"
        named = _NAMED_FIELD.search(message)
        if named and source == "body":
            key = named.group(1) if key == "body" else f"{key}.{named.group(1)}"
        errors.append(FieldError(str(key), message, source))
    return errors


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc)
        status = exc.status_code if exc.status_code != 400 else 422
        fields = ", ".join(e.field for e in errors)
        detail = f"invalid input in: {fields}" if errors else exc.detail
        return problem_response(request, status, detail, errors or None)
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(request, exc.status_code, exc.detail, headers=headers or None)


def on_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    status = 422
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Conflict):
        status = 409
    elif isinstance(exc, OutOfScope):
        status = 403
    elif isinstance(exc, RuleBroken):
        status = 422
    errors = [FieldError(exc.field, exc.detail, exc.source)] if exc.field else None
    return problem_response(request, status, exc.detail, errors)


def on_unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Problem]:
    log.warning("%s: answering 503", exc)
    return problem_response(
        request,
        503,
        f"{exc.dependency} is unavailable right now; retry after {exc.retry_after} seconds",
        headers={"Retry-After": str(exc.retry_after)},
    )


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The one place connection-level failures of any client become a 503: whatever layer
    # they surface through, a dependency that is down is not a bug of the request.
    down = unavailable(exc)
    if down is not None:
        return on_unavailable(request, down)
    log.exception("unhandled error", exc_info=exc)
    return problem_response(request, 500, "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: on_http_exception,
    DomainError: on_domain_error,
    Exception: on_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "FieldError", "Problem"]
