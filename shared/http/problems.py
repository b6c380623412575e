"""RFC 9457 problem details for every error, naming the field where one is at fault, in
Bahasa Indonesia or English as `Accept-Language` asks (Indonesian by default).

`code` (an extension member) names the kind of problem, the same in every language: what
clients branch on. `type` stays "about:blank": no kind has a documentation page of its own
to point at yet, and `code` already tells the kinds apart.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from shared.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    OutOfScope,
)
from shared.domain.messages import Message
from shared.http.language import Language, negotiate, translate
from shared.resilience.faults import Unavailable, unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemCode(StrEnum):
    """The kind of problem, stable across languages and versions."""

    MALFORMED_REQUEST = "malformed-request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    OUT_OF_SCOPE = "out-of-scope"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    CONFLICT = "conflict"
    PRECONDITION_FAILED = "precondition-failed"
    CONTENT_TOO_LARGE = "content-too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    VALIDATION_FAILED = "validation-failed"
    RULE_BROKEN = "rule-broken"
    TOO_MANY_REQUESTS = "too-many-requests"
    INTERNAL_ERROR = "internal-error"
    UNAVAILABLE = "unavailable"
    READ_MODELS_BEHIND = "read-models-behind"
    ERROR = "error"


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str
    source: str = "body"


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details. `title`, `detail` and `errors[].message` are in the
    language `Accept-Language` asks for (`id` or `en`; Indonesian by default, named in
    `Content-Language`); messages of domain rules and of input parsing may be English."""

    type: str
    code: Annotated[
        ProblemCode, msgspec.Meta(description="The kind of problem, the same in every language")
    ]
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    correlation_id: str | None = None


# The code of an answer with this status when nothing more specific is known.
_CODES = {
    400: ProblemCode.MALFORMED_REQUEST,
    401: ProblemCode.UNAUTHENTICATED,
    403: ProblemCode.FORBIDDEN,
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    409: ProblemCode.CONFLICT,
    412: ProblemCode.PRECONDITION_FAILED,
    413: ProblemCode.CONTENT_TOO_LARGE,
    415: ProblemCode.UNSUPPORTED_MEDIA_TYPE,
    422: ProblemCode.VALIDATION_FAILED,
    429: ProblemCode.TOO_MANY_REQUESTS,
    500: ProblemCode.INTERNAL_ERROR,
    503: ProblemCode.UNAVAILABLE,
}

# English titles; their Indonesian is in the catalogue (shared.http.language).
TITLES: dict[ProblemCode, str] = {
    ProblemCode.MALFORMED_REQUEST: "Malformed request",
    ProblemCode.UNAUTHENTICATED: "Not authenticated",
    ProblemCode.FORBIDDEN: "Forbidden",
    ProblemCode.OUT_OF_SCOPE: "Outside your scope",
    ProblemCode.NOT_FOUND: "Not found",
    ProblemCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ProblemCode.CONFLICT: "Conflict",
    ProblemCode.PRECONDITION_FAILED: "Precondition failed",
    ProblemCode.CONTENT_TOO_LARGE: "Content too large",
    ProblemCode.UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
    ProblemCode.VALIDATION_FAILED: "Invalid input",
    ProblemCode.RULE_BROKEN: "Refused by a business rule",
    ProblemCode.TOO_MANY_REQUESTS: "Too many requests",
    ProblemCode.INTERNAL_ERROR: "Internal error",
    ProblemCode.UNAVAILABLE: "Service unavailable",
    ProblemCode.READ_MODELS_BEHIND: "Read models not caught up yet",
    ProblemCode.ERROR: "Error",
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
    code: ProblemCode | None = None,
) -> Response[Problem]:
    language = negotiate(request.headers.get("accept-language"))
    code = code or _CODES.get(status, ProblemCode.ERROR)
    if detail is not None and detail == _phrase(status):
        # Litestar's default detail only repeats the status: the title says it, translated.
        detail = None
    return Response(
        Problem(
            type="about:blank",
            code=code,
            title=translate(Message(TITLES[code]), language),
            status=status,
            detail=None if detail is None else translate(detail, language),
            instance=request.url.path,
            errors=[_translated(e, language) for e in errors] if errors else None,
            correlation_id=request.state.get("correlation_id"),
        ),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={
            **(headers or {}),
            "Content-Language": language,
            # The same URL answers in another language to another client: caches must know.
            "Vary": "Accept-Language",
        },
    )


def _phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def _translated(error: FieldError, language: Language) -> FieldError:
    return FieldError(error.field, translate(error.message, language), error.source)


def _field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = item.get("message")
        message = message if isinstance(message, str) else "invalid value"
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
        detail = Message("invalid input in: {fields}", fields=fields) if errors else exc.detail
        return problem_response(request, status, detail, errors or None)
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(request, exc.status_code, exc.detail, headers=headers or None)


def on_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Problem]:
    # Any other domain error is a business rule refusing the command (RuleBroken).
    status, code = 422, ProblemCode.RULE_BROKEN
    if isinstance(exc, NotFound):
        status, code = 404, ProblemCode.NOT_FOUND
    elif isinstance(exc, Conflict):
        status, code = 409, ProblemCode.CONFLICT
    elif isinstance(exc, OutOfScope):
        status, code = 403, ProblemCode.OUT_OF_SCOPE
    elif isinstance(exc, InvalidInput):
        code = ProblemCode.VALIDATION_FAILED
    errors = [FieldError(exc.field, exc.detail, exc.source)] if exc.field else None
    return problem_response(request, status, exc.detail, errors, code=code)


def on_unavailable(request: Request[Any, Any, Any], exc: Unavailable) -> Response[Problem]:
    log.warning("%s: answering 503", exc)
    return problem_response(
        request,
        503,
        Message(
            "{dependency} is unavailable right now; retry after {seconds} seconds",
            dependency=exc.dependency,
            seconds=exc.retry_after,
        ),
        headers={"Retry-After": str(exc.retry_after)},
    )


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The one place connection-level failures of any client become a 503: whatever layer
    # they surface through, a dependency that is down is not a bug of the request.
    down = unavailable(exc)
    if down is not None:
        return on_unavailable(request, down)
    log.exception("unhandled error", exc_info=exc)
    return problem_response(
        request, 500, Message("an unexpected error occurred; it has been logged")
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: on_http_exception,
    DomainError: on_domain_error,
    Exception: on_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "TITLES", "FieldError", "Problem", "ProblemCode"]
