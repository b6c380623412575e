"""Makes the OpenAPI document the contract the running service keeps, for every route from
what the kernel knows about it, so no controller has to list its error answers:

- every operation documents the problem responses the kernel can give it (RFC 9457,
  `application/problem+json`, the `Problem` schema with its `code`, `Content-Language`)
  instead of Litestar's generic 400;
- public routes (health, docs) say `security: []` instead of inheriting the bearer scheme;
- a request body whose Struct forbids unknown fields says `additionalProperties: false`;
- a request body Struct's `examples` (a ClassVar: summary -> instance) become the
  operation's request examples, what the docs page's "Try it out" starts from (at the media
  type, not in the schema: Schemathesis' generation phases ignore them there);
- the `tenant` path parameter lists the tenants that exist, with 35 (Jawa Timur) as its
  example: the services' request examples are valid there;
- commands (routes with a body) document the headers `shared.http.commands` reads, and
  answer their log position (`Mpks-Position`); tenant reads document `Mpks-Min-Position`
  and `Prefer: wait=N` (`shared.http.reads`: reading one's own writes) and
  `X-Access-Reason` (`shared.http.access`: the why of an access-logged read).

Litestar builds the document once and caches it as the dict it serves (`/docs/openapi.json`
and the docs page); this completes that dict when the app is built, before anything serves
it. `app.openapi_schema` (Litestar's object model) stays as Litestar generated it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from shared.audit.access import REASON_MAX_LENGTH
from shared.http.access import REASON_HEADER
from shared.http.commands import CAUSATION_HEADER, IDEMPOTENCY_HEADER
from shared.http.language import DEFAULT_LANGUAGE, Language
from shared.http.middleware import TRACE_ID
from shared.http.params import MAX_INTEGER
from shared.http.problems import PROBLEM_JSON, Problem
from shared.http.reads import (
    DEFAULT_WAIT_SECONDS,
    MAX_WAIT_SECONDS,
    MIN_POSITION_HEADER,
    POSITION_HEADER,
)
from shared.http.security import PUBLIC_PATHS
from shared.tenancy import province_codes

_REF = "#/components/schemas/{name}"
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# The province the request examples are written for (the docs page's first choice).
EXAMPLE_TENANT = "35"

# Why each problem happens, as the document tells clients.
_PROBLEMS: dict[int, str] = {
    400: "Malformed body: not JSON, not UTF-8 or nested too deep",
    401: "Missing, invalid or expired bearer token",
    403: "The token's tenant, roles or PDM do not allow this",
    404: "Unknown tenant, or no such record in it",
    409: "The record changed since it was read (If-Match), or the Idempotency-Key was used "
    "for a different request",
    412: f"{MIN_POSITION_HEADER} is beyond the tenant's log (no command answered it)",
    413: "Body too large",
    415: "The body is not application/json (UTF-8)",
    422: "Invalid input; `errors[]` names each field at fault and where it is "
    "(body, query, header)",
    429: "Too many requests from this client address to the public routes; retry after "
    "RateLimit-Reset seconds",
    500: "Unexpected error (logged with the correlation id)",
    503: "PostgreSQL is unavailable (a read that must be access-logged is not answered "
    f"unlogged), or the read models did not reach {MIN_POSITION_HEADER} within the wait; "
    "retry after Retry-After",
}


def _problems_of(path: str, method: str, handler: HTTPRouteHandler) -> list[int]:
    public = any(re.match(pattern, path) for pattern in PUBLIC_PATHS)
    # The edge checks every query string of every route (shared.http.edge).
    statuses = [422, 500]
    if not public:
        statuses += [401, 503]
    elif path.startswith("/v1/public/"):
        # Public reads of read models (shared.http.public): rate-limited, and they need
        # PostgreSQL.
        statuses += [429, 503]
    # The app's own guards are on every route; on a public one they never refuse.
    if handler.resolve_guards() and not public:
        statuses.append(403)
    if "{" in path:
        statuses.append(404)
    if "data" in handler.parsed_fn_signature.parameters:
        statuses += [400, 413, 415]
    if method in _WRITES:
        statuses.append(409)
    if _reads_own_writes(path, method):
        statuses.append(412)
    return sorted(statuses)


def _reads_own_writes(path: str, method: str) -> bool:
    return method == "GET" and "{tenant}" in path


def _read_headers() -> list[dict[str, Any]]:
    return [
        {
            "name": MIN_POSITION_HEADER,
            "in": "header",
            "required": False,
            "description": f"Answer once the read models have applied this position (the "
            f"{POSITION_HEADER} of a command's answer): read your own writes",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
        },
        {
            "name": "Prefer",
            "in": "header",
            "required": False,
            "description": f"`wait=S`: how long to wait for {MIN_POSITION_HEADER} (default "
            f"{DEFAULT_WAIT_SECONDS:g} s, at most {MAX_WAIT_SECONDS:g} s)",
            "schema": {"type": "string"},
        },
        {
            "name": REASON_HEADER,
            "in": "header",
            "required": False,
            "description": "Why you read (kept in the access log with an auditor's read or a "
            "read of a restricted record)",
            # One line of text: no control characters (C0, DEL, C1).
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": REASON_MAX_LENGTH,
                "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
            },
        },
    ]


def _position_header() -> dict[str, Any]:
    return {
        "description": "Position of the command's events in the tenant's log: send it as "
        f"{MIN_POSITION_HEADER} to read what it wrote",
        "schema": {"type": "integer", "minimum": 0},
    }


def _command_headers(path: str) -> list[dict[str, Any]]:
    headers: list[dict[str, Any]] = [
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "description": "Retry-safe key: the same key and body replay the first answer",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        {
            "name": CAUSATION_HEADER,
            "in": "header",
            "required": False,
            "description": "Id of the message that caused this command (kept in the events)",
            "schema": {"type": "string", "pattern": f"^{TRACE_ID.pattern}$"},
        },
    ]
    # A command on an existing record (a path parameter besides the tenant) takes If-Match.
    if re.search(r"\{(?!tenant\})\w+\}", path):
        headers.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": 'The version (ETag) last read, e.g. "3": refused with 409 if '
                "the record changed since",
                "schema": {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'},
            }
        )
    return headers


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _PROBLEMS[status],
        "headers": {
            "Content-Language": {
                "description": "The language of the problem's text, as `Accept-Language` "
                f"asked (default `{DEFAULT_LANGUAGE}`)",
                "required": True,
                "schema": {"type": "string", "enum": [str(lang) for lang in Language]},
            }
        },
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(name="Problem")}}},
    }


def _close_struct(schemas: dict[str, Any], schema: dict[str, Any], struct: Any) -> None:
    """`additionalProperties: false` where msgspec refuses unknown fields, nested Structs too."""
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return
    if info.forbid_unknown_fields:
        schema["additionalProperties"] = False
    properties = schema.get("properties", {})
    for field in info.fields:
        prop = properties.get(field.encode_name)
        if prop is None:
            continue
        for variant in prop.get("oneOf", [prop]):
            if "$ref" in variant and isinstance(field.type, msgspec.inspect.StructType):
                _close_struct(schemas, variant, field.type.cls)


def _request_examples(struct: Any) -> dict[str, Any] | None:
    examples: dict[str, msgspec.Struct] | None = getattr(struct, "examples", None)
    if not examples:
        return None
    return {
        re.sub(r"[^A-Za-z0-9]+", "-", summary).strip("-").lower(): {
            "summary": summary,
            "value": msgspec.to_builtins(example),
        }
        for summary, example in examples.items()
    }


def complete_contract(app: Litestar) -> None:
    document: dict[str, Any] = app.plugins.get("OpenAPIPlugin").provide_openapi_schema()
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _, problem_schemas = msgspec.json.schema_components([Problem], ref_template=_REF)
    schemas.update(problem_schemas)
    tenants = sorted(province_codes())

    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = document["paths"].get(route.path_format)
        if item is None:  # not in the schema (metrics, the docs themselves)
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = item.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                declared = {str(status) for status in handler.responses or {}}
                for status in [s for s in responses if not s.startswith("2")]:
                    # Litestar's generic error shapes: the kernel answers problems instead.
                    if status not in declared:
                        del responses[status]
                for status in _problems_of(route.path_format, method, handler):
                    responses.setdefault(str(status), _problem_response(status))
                if any(re.match(p, route.path_format) for p in PUBLIC_PATHS):
                    operation["security"] = []
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path" and parameter["name"] == "tenant":
                        parameter["schema"] = {"type": "string", "enum": tenants}
                        parameter["example"] = EXAMPLE_TENANT
                body = operation.get("requestBody", {}).get("content", {}).get("application/json")
                data = handler.parsed_fn_signature.parameters.get("data")
                if body is not None and data is not None:
                    _close_struct(schemas, body["schema"], data.annotation)
                    if examples := _request_examples(data.annotation):
                        body["examples"] = examples
                    parameters = operation.setdefault("parameters", [])
                    parameters += _command_headers(route.path_format)
                    for status, response in responses.items():
                        if status.startswith("2"):
                            response.setdefault("headers", {})[POSITION_HEADER] = _position_header()
                if _reads_own_writes(route.path_format, method):
                    headers = _read_headers()
                    if route.path_format.startswith("/v1/public/"):
                        # Public reads name no reader: nothing goes to the access log.
                        headers = [h for h in headers if h["name"] != REASON_HEADER]
                    operation.setdefault("parameters", []).extend(headers)


__all__ = ["complete_contract"]
