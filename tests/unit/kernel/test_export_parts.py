"""The single-URL export passes another service's part on as it comes, however the bytes are
cut on the way, and a part that does not arrive whole leaves the document without its end line
(an auditor's sign that it was cut short)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from shared.audit.export import Cursor, Totals, document, header
from shared.http.export import ExportIncomplete, from_service

TENANT = "35"
SERVICE = "cases"
EVENTS = [
    b'{"type":"event","service":"cases","position":%d,"data":{"note":"baris\\n%d"}}\n' % (p, p)
    for p in (4, 7, 9)
]


def _part() -> bytes:
    """The cases service's own answer to `?service=cases`: header, events, end line."""
    totals = Totals(TENANT, Cursor({SERVICE: 0}))
    body = totals.add(header(TENANT, Cursor({SERVICE: 0}), None))
    body += totals.add(b"".join(EVENTS))
    totals.events[SERVICE], totals.last[SERVICE] = 3, 9
    return body + totals.end()


def _client(body: bytes, piece: int) -> httpx.AsyncClient:
    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(body), piece):
            yield body[at : at + piece]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["service"] == SERVICE
        return httpx.Response(200, content=pieces())

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def _document(body: bytes, piece: int, received: list[bytes] | None = None) -> bytes:
    """The single-URL document whose only part is `body`, received in `piece`-byte reads;
    `received` gets each chunk as it goes out."""
    cursor = Cursor({SERVICE: 0})
    chunks = [] if received is None else received
    async with _client(body, piece) as client:
        section = from_service(client, "http://cases", SERVICE, TENANT, 0, None)
        async for chunk in document(TENANT, cursor, None, {SERVICE: section}):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("piece", [1, 7, 64, 1 << 20])
async def test_another_services_part_comes_through_whole_however_it_is_cut(piece: int) -> None:
    body = await _document(_part(), piece)

    lines = body.splitlines(keepends=True)
    assert msgspec.json.decode(lines[0])["type"] == "header"
    assert lines[1:-1] == EVENTS
    end = msgspec.json.decode(lines[-1])
    assert end["services"] == {SERVICE: {"events": 3, "last_position": 9}}
    assert end["next_from"] == f"{SERVICE}:9"
    assert end["sha256"] == hashlib.sha256(b"".join(lines[:-1])).hexdigest()


async def test_a_part_cut_short_or_altered_leaves_the_document_without_its_end_line() -> None:
    whole = _part()
    cut = whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 1]
    altered = whole.replace(b'"position":7', b'"position":8')
    for broken, reason in [(cut, "without its end line"), (altered, "does not match")]:
        received: list[bytes] = []
        with pytest.raises(ExportIncomplete, match=reason):
            await _document(broken, 64, received)
        assert received, "what came before the break went out"
        assert b'"type":"end"' not in b"".join(received)
