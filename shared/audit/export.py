"""A tenant's export: every event of its logs, service by service, as NDJSON an auditor can
replay and another system can load (format `mpks-export/1`, documented in the README).

One document is a header line, the events of each service in position order (the services
in the header's order), and an `end` line with the counts, the last positions and the SHA-256
of every byte before it: a file cut short has no `end` line, or one whose digest disagrees.

Events go out **as stored**, not upcast: `meta` and `data` are the bytes of the stored state,
spliced into the line without decoding them (so an auditor gets the recorded form — personal
fields in their encrypted form too — and the export runs near the speed of a raw `COPY`), and
`event_version` is the version they were recorded with. The stored state is exactly
`{"v":<event_version>,"meta":<meta>,"data":<data>}` with `meta` and `data` as the line has
them, byte for byte.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from shared.audit.checkpoints import stored_checkpoints
from shared.audit.signing import Checkpoint as SignedCheckpoint
from shared.db.pool import DbConnection
from shared.eventstore.stores import events_table, tenant_schema

FORMAT = 1
MEDIA_TYPE = "application/x-ndjson"

# Rows each round trip brings, and the events of one chunk of the document (a few MB): large
# enough that the round trips and the writes cost little next to the rows, small enough that
# a stream answers at once and holds little memory.
_BATCH = 5000

# The columns an export reads from each log, the text ones as bytes (spliced as they come).
# `hash` is the event's link in the tenant's hash chain (`shared.audit.chain`), as the JSON
# string of its hex (or `null`, not chained yet).
COLUMNS = (
    "notification_id, originator_id::text::bytea, originator_version, topic, state, "
    "convert_to(coalesce('\"' || encode(hash, 'hex') || '\"', 'null'), 'UTF8')"
)


class ExportError(ValueError):
    """A parameter of the export is malformed; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Cursor(msgspec.Struct, frozen=True):
    """Where an export starts: per service, the last position already exported (0: from the
    start). Written `registry:120,cases:55`; a service it does not name starts at 0."""

    after: dict[str, int]

    @classmethod
    def parse(cls, text: str | None, services: Iterable[str]) -> Cursor:
        known = list(services)
        after = dict.fromkeys(known, 0)
        if not text:
            return cls(after)
        for part in text.split(","):
            name, sep, position = part.strip().partition(":")
            if not sep or name not in after or not re.fullmatch(r"\d{1,18}", position):
                raise ExportError(
                    "from",
                    f"expected SERVICE:POSITION[,SERVICE:POSITION…] with a service among "
                    f"{', '.join(known)}, got {part.strip()!r}",
                )
            after[name] = int(position)
        return cls(after)

    def text(self) -> str:
        return ",".join(f"{name}:{position}" for name, position in self.after.items())


def parse_until(text: str | None) -> datetime | None:
    """A date-time with its offset, or a date (its end of day, UTC)."""
    if not text:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.fromisoformat(text).replace(
                hour=23, minute=59, second=59, microsecond=999999, tzinfo=UTC
            )
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ExportError(
            "until", f"expected a date (2026-12-31) or a date-time with offset, got {text!r}"
        )
    return value


class Header(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="header"):
    format: int = FORMAT
    tenant: str
    services: list[str]
    # The cursor the export started after (the `from` it was asked for).
    after: dict[str, int] = msgspec.field(name="from")
    until: datetime | None
    generated_at: datetime


class ServiceTotals(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    # The last position exported, or where it started when nothing was: the `from` of the
    # next export.
    last_position: int


class End(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="end"):
    format: int = FORMAT
    tenant: str
    events: int
    services: dict[str, ServiceTotals]
    # Pass it as `from` to export what was appended since (or the rest after a cut).
    next_from: str
    # SHA-256 (hex) of every byte of the document before this line.
    sha256: str


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="checkpoint"):
    """A signed head of the hash chain (`shared.audit.checkpoints`), after the event at
    `position`; `head_hash` and `signature` in hex."""

    format: int = FORMAT
    service: str
    tenant: str
    position: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature: str


class _Occurred(msgspec.Struct):
    # The library's `timestamp`, as stored (a JSON string, quotes included).
    timestamp: msgspec.Raw


class _Stored(msgspec.Struct):
    """What a line needs of the stored state that is not already in its bytes: the rest
    (`meta`, `data`) is spliced from the state as it is."""

    v: int
    data: _Occurred


_stored = msgspec.json.Decoder(_Stored)
_moment = msgspec.json.Decoder(datetime)
_encode = msgspec.json.encode


class Totals:
    """What a document held so far: its `end` line's counts and digest."""

    def __init__(self, tenant: str, cursor: Cursor) -> None:
        self.tenant = tenant
        self.digest = hashlib.sha256()
        self.events = dict.fromkeys(cursor.after, 0)
        self.last = dict(cursor.after)

    def add(self, chunk: bytes) -> bytes:
        self.digest.update(chunk)
        return chunk

    def end(self) -> bytes:
        line = _encode(
            End(
                tenant=self.tenant,
                events=sum(self.events.values()),
                services={
                    name: ServiceTotals(events=self.events[name], last_position=self.last[name])
                    for name in self.events
                },
                next_from=Cursor(self.last).text(),
                sha256=self.digest.hexdigest(),
            )
        )
        return line + b"\n"


def header(
    tenant: str, cursor: Cursor, until: datetime | None, now: datetime | None = None
) -> bytes:
    line = _encode(
        Header(
            tenant=tenant,
            services=list(cursor.after),
            after=cursor.after,
            until=until,
            generated_at=now or datetime.now(UTC),
        )
    )
    return line + b"\n"


async def service_events(
    conn: DbConnection,
    service: str,
    tenant: str,
    *,
    after: int,
    until: datetime | None,
    totals: Totals,
) -> AsyncIterator[bytes]:
    """The event lines of one service's log of `tenant` after position `after`, in chunks.

    Runs in the caller's transaction, which has named the tenant (row-level security) and
    should be REPEATABLE READ so the export is one snapshot. With `until`, the log is cut
    before its first event that occurred after it: a prefix of the log (what it held then,
    give or take the commits in flight), so a chain still verifies and the read stops there.
    """
    table = f"{tenant_schema(service, tenant)}.{events_table(service)}"
    # The log's signed checkpoints past `after`, each to go out after its event (a handful
    # per thousand events: read before the events, in the same snapshot).
    signed = [
        _checkpoint_line(c)
        for c in await stored_checkpoints(conn, service, tenant)
        if c.position > after
    ]
    signed.reverse()
    rows_of = await conn.cursor(
        f"SELECT {COLUMNS} FROM {table} WHERE notification_id > $1 ORDER BY notification_id",
        after,
    )
    # One line, filled by one formatting per event: the fields in the README's order.
    line = (
        b'{"type":"event","format":%d,"service":%b,"tenant":%b,'
        % (
            FORMAT,
            _encode(service),
            _encode(tenant),
        )
        + b'"position":%d,"aggregate":%b,"aggregate_id":"%b","aggregate_version":%d,'
        + b'"event":%b,"event_version":%d,"occurred_at":%b%b,"hash":%b}\n'
    )
    names = _Names()
    stored_of = _stored.decode
    following = asyncio.ensure_future(rows_of.fetch(_BATCH))
    try:
        while True:
            rows = await following
            full = len(rows) == _BATCH
            if until is not None:
                kept = _occurred_by(rows, until)
                full = full and kept == len(rows)
                rows = rows[:kept]
            if full:
                # Ask for the next batch before formatting this one, so PostgreSQL sends it
                # while Python works (a pause lets the request go out).
                following = asyncio.ensure_future(rows_of.fetch(_BATCH))
                await asyncio.sleep(0)
            if not rows:
                break
            # The per-event work, kept to one decoding (the event version and the time it
            # occurred) and one formatting: `meta` and `data` are the state after its `"v"`
            # (`,"meta":<meta>,"data":<data>` without the closing brace: the state's form is
            # in the module's docstring).
            lines = [
                line
                % (
                    position,
                    names[topic][0],
                    aggregate_id,
                    version,
                    names[topic][1],
                    (stored := stored_of(state)).v,
                    stored.data.timestamp,
                    state[state.index(b",", 5) : -1],
                    chain_hash,
                )
                for position, aggregate_id, version, topic, state, chain_hash in rows
            ]
            last = rows[-1][0]
            # Each checkpoint after its event (found by position: the rows are in order).
            while signed and signed[-1][0] <= last:
                position, checkpoint = signed.pop()
                at = bisect.bisect_right(rows, position, key=_position)
                lines.insert(at + len(lines) - len(rows), checkpoint)
            totals.events[service] += len(rows)
            totals.last[service] = last
            yield totals.add(b"".join(lines))
            if not full:
                break
    finally:
        # The connection runs one statement at a time: a batch still on its way (the log
        # cut at `until`, or the reader gone) must have arrived before the next statement.
        await asyncio.wait([following])


def _position(row: Sequence[Any]) -> int:
    position: int = row[0]
    return position


def _occurred_by(rows: Sequence[Sequence[Any]], until: datetime) -> int:
    """How many of `rows` (in position order) occurred by `until`."""
    for kept, row in enumerate(rows):
        if _moment.decode(_stored.decode(row[4]).data.timestamp) > until:
            return kept
    return len(rows)


class _Names(dict[str, tuple[bytes, bytes]]):
    """A topic's aggregate and event names as JSON strings (a log has a few dozen topics)."""

    def __missing__(self, topic: str) -> tuple[bytes, bytes]:
        aggregate, _, event = topic.partition(".")
        named = self[topic] = (_encode(aggregate), _encode(event))
        return named


def _checkpoint_line(checkpoint: SignedCheckpoint) -> tuple[int, bytes]:
    line = _encode(
        Checkpoint(
            service=checkpoint.service,
            tenant=checkpoint.tenant,
            position=checkpoint.position,
            head_hash=checkpoint.head_hash.hex(),
            signed_at=checkpoint.signed_at,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature.hex(),
        )
    )
    return checkpoint.position, line + b"\n"


Section = Callable[[Totals], AsyncIterator[bytes]]


async def document(
    tenant: str,
    cursor: Cursor,
    until: datetime | None,
    sections: Mapping[str, Section],
    totals: Totals | None = None,
) -> AsyncIterator[bytes]:
    """The header, each service's events (`sections`, one per service of the cursor, in its
    order) and the end line with the counts and the digest."""
    totals = totals or Totals(tenant, cursor)
    yield totals.add(header(tenant, cursor, until))
    for service in cursor.after:
        async for chunk in sections[service](totals):
            yield chunk
    yield totals.end()


def from_log(
    conn: DbConnection, service: str, tenant: str, after: int, until: datetime | None
) -> Section:
    """A service's events read from its log, in one read-only snapshot."""

    async def section(totals: Totals) -> AsyncIterator[bytes]:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # With the tenant's row-level security policy the planner expects a few rows (it
            # cannot estimate the policy's condition) and would have workers read the whole
            # log and sort it on disk before the first row; one reader in the index's order
            # streams it instead.
            await conn.execute(
                "SELECT set_config('app.tenant_id', $1, true), "
                "set_config('enable_sort', 'off', true), "
                "set_config('max_parallel_workers_per_gather', '0', true)",
                tenant,
            )
            async for chunk in service_events(
                conn, service, tenant, after=after, until=until, totals=totals
            ):
                yield chunk

    return section


def read_export(
    connections: Mapping[str, DbConnection],
    tenant: str,
    cursor: Cursor,
    until: datetime | None,
    totals: Totals | None = None,
) -> AsyncIterator[bytes]:
    """The whole document from connections that can each read its service's log (the
    owner's, for the CLI); `totals`, when given, follows the counts and last positions as
    the chunks go out."""
    return document(
        tenant,
        cursor,
        until,
        {
            service: from_log(connections[service], service, tenant, after, until)
            for service, after in cursor.after.items()
        },
        totals,
    )


async def log_heads(conn: DbConnection, tenant: str, cursor: Cursor) -> dict[str, int]:
    """The last position of each of the cursor's logs (0: empty), an index lookup each."""
    heads = await conn.fetchrow(
        "SELECT "
        + ", ".join(
            f"(SELECT coalesce(max(notification_id), 0) FROM "
            f"{tenant_schema(service, tenant)}.{events_table(service)})"
            for service in cursor.after
        )
    )
    assert heads is not None
    return dict(zip(cursor.after, heads, strict=True))
