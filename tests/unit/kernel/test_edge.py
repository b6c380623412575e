"""The edge's input checks on their own: what uvicorn already refuses on the wire (a NUL in a
header) must still be refused if another server lets it through."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.exceptions import ClientException, ValidationException

from shared.http.edge import MAX_JSON_DEPTH, EdgeInputMiddleware, unstorable_text


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the request must not reach the app")


async def test_a_nul_in_a_header_value_is_refused_naming_the_header() -> None:
    scope = {
        "type": "http",
        "query_string": b"",
        "headers": [(b"idempotency-key", b"a\x00b"), (b"accept", b"*/*")],
    }
    with pytest.raises(ValidationException) as refused:
        await EdgeInputMiddleware(_never_called)(scope, None, None)  # type: ignore[arg-type]
    assert refused.value.extra == [
        {
            "key": "idempotency-key",
            "message": "must not contain the NUL character (U+0000)",
            "source": "header",
        }
    ]


def test_every_unstorable_string_is_named_by_its_path() -> None:
    document = {"a": "ok", "b": ["x\x00", {"c\x00": "y", "d": "\ud800"}]}
    assert sorted(e["key"] for e in unstorable_text(document)) == ["b[0]", "b[1].c\x00", "b[1].d"]


def test_nesting_beyond_the_limit_is_refused_without_recursion() -> None:
    document: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        document = [document]
    assert unstorable_text(document) == []
    with pytest.raises(ClientException):
        unstorable_text([document])
