"""What the edge refuses before any handler sees it: bodies that are not JSON, not UTF-8 or
nested beyond reason, and text PostgreSQL cannot store (U+0000) in a body, a query parameter
or a header. Every refusal is a 4xx problem naming the field, never a 500 deeper down.

One mechanism for every route: the app decodes bodies with `EdgeRequest` and runs
`EdgeInputMiddleware`; no request schema has to remember any of this per field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Receive, Scope, Send

from shared.domain.messages import Message

# JSON that deep is an attack, not a record: our schemas nest two or three levels.
MAX_JSON_DEPTH = 32


class UnsupportedMediaType(HTTPException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


def is_json_media_type(media_type: str, options: dict[str, str]) -> bool:
    """`application/json` or any `application/*+json` (problem+json, merge-patch+json, ...),
    in UTF-8: the only encoding RFC 8259 allows between systems."""
    kind, _, subtype = media_type.strip().lower().partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    return options.get("charset", "utf-8").strip().strip('"').lower() in {"utf-8", "utf8"}


NUL_CHARACTER = Message("must not contain the NUL character (U+0000)")
NOT_UTF8 = Message("is not valid UTF-8")


def _too_deep() -> Message:
    return Message("the JSON body is nested deeper than {depth}", depth=MAX_JSON_DEPTH)


def _unstorable(text: str) -> Message | None:
    """Why PostgreSQL `text`/`jsonb` would refuse this string, if it would."""
    if "\x00" in text:
        return NUL_CHARACTER
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return Message("must not contain unpaired UTF-16 surrogates")
    return None


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def unstorable_text(document: Any) -> list[dict[str, str]]:
    """Every string (value or key) in a decoded JSON document that PostgreSQL cannot hold,
    as Litestar validation items. Iterative, so the walk itself cannot overflow the stack;
    a document nested beyond MAX_JSON_DEPTH is refused as a whole."""
    errors: list[dict[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            if reason := _unstorable(value):
                errors.append({"key": path or "body", "message": reason, "source": "body"})
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ClientException(detail=_too_deep())
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                where = _join(path, key)
                if isinstance(key, str) and (reason := _unstorable(key)):
                    name = Message("name {reason}", reason=reason)
                    errors.append({"key": where, "message": name, "source": "body"})
                stack.append((where, item, depth + 1))
    return errors


class EdgeRequest(Request[Any, Any, Any]):
    """Litestar's request, with the body decoding every JSON handler goes through guarded."""

    async def json(self) -> Any:
        media_type, options = self.content_type
        if not is_json_media_type(media_type, options):
            raise UnsupportedMediaType(
                detail=Message(
                    "the body must be application/json (UTF-8), not {media_type!r}",
                    media_type=media_type or "unlabelled",
                )
            )
        try:
            document = await super().json()
        except UnicodeDecodeError:
            raise ClientException(detail=Message("the body is not valid UTF-8")) from None
        except RecursionError:
            raise ClientException(detail=_too_deep()) from None
        if errors := unstorable_text(document):
            raise ValidationException("the body holds text that cannot be stored", extra=errors)
        return document


def _decoded(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")


class EdgeInputMiddleware:
    """Refuses query parameters and header values that are not UTF-8 text PostgreSQL can
    store, naming the parameter or header, before any handler or query sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        errors: list[dict[str, str]] = []
        for pair in scope.get("query_string", b"").split(b"&"):
            if not pair:
                continue
            raw_name, _, raw_value = pair.partition(b"=")
            try:
                name = _decoded(raw_name)
            except UnicodeDecodeError:
                errors.append(_query_error("query", Message("parameter name is not valid UTF-8")))
                continue
            try:
                value = _decoded(raw_value)
            except UnicodeDecodeError:
                errors.append(_query_error(name, NOT_UTF8))
                continue
            if reason := _unstorable(name) or _unstorable(value):
                errors.append(_query_error(name, reason))
        for raw_header, raw_value in scope.get("headers", ()):
            if b"\x00" in raw_value:
                errors.append(
                    {
                        "key": raw_header.decode("latin-1"),
                        "message": NUL_CHARACTER,
                        "source": "header",
                    }
                )
        if errors:
            raise ValidationException("the request holds text that cannot be stored", extra=errors)
        await self.app(scope, receive, send)


def _query_error(name: str, message: str) -> dict[str, str]:
    return {"key": name, "message": message, "source": "query"}


__all__ = ["EdgeInputMiddleware", "EdgeRequest", "UnsupportedMediaType", "is_json_media_type"]
