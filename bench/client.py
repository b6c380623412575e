"""A lean HTTP/1.1 keep-alive client for the benchmark.

General-purpose clients (httpx) spend more CPU per request than the server under test on
this 2-core machine, which would make the client the limit being measured.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import msgspec


class Reply(NamedTuple):
    status: int
    body: bytes
    # The server answered from an earlier command with the same Idempotency-Key.
    replayed: bool


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self._reader = reader
        self._writer = writer
        self._host = host
        self._encoder = msgspec.json.Encoder()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def request(self, method: str, path: str, body: object, headers: dict[str, str]) -> Reply:
        """Send one request and read the whole response."""
        payload = self._encoder.encode(body)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._writer.write(
            (
                f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"{head}\r\n"
            ).encode()
            + payload
        )
        status_line = await self._reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        replayed = False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"idempotent-replayed":
                replayed = value.strip() == b"true"
        payload = await self._reader.readexactly(length) if length else b""
        return Reply(status, payload, replayed)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
