"""Verify a tenant log: recompute its hash chain (`shared.audit.chain`) from the first event,
check every signed checkpoint (`shared.audit.checkpoints`) against it, and name the first
thing wrong:

- `altered`: the event at the position is not what was recorded there;
- `removed`: positions are missing (the chain numbers events without gaps), or a
  checkpoint covers a position the log no longer reaches (the log was cut short);
- `inserted`: an event that was never appended stands at the position (the event after it
  chains on from the one before it);
- `reordered`: the event recorded at the position now stands at another;
- `bad signature`: a checkpoint's signature does not verify with a trusted key;
- `checkpoint mismatch`: a validly signed checkpoint's head hash differs from the chain
  recomputed up to its position (the log was rewritten, hashes and all).

The log is read in position order through a server-side cursor, in batches, in the
caller's transaction (which names the tenant, or is the owner's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.audit.chain import GENESIS, event_hash, log_prefix
from shared.audit.signing import Checkpoint
from shared.db.pool import DbConnection
from shared.eventstore.stores import events_table, tenant_schema

Kind = Literal[
    "altered", "removed", "inserted", "reordered", "bad signature", "checkpoint mismatch"
]

BATCH = 5000
# How far past a broken link verify looks for the event that belongs there (reordered).
LOOKAHEAD = 1000
# How many events removed with the rest moved down to hide the gap verify names as such.
RENUMBERED = 16


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    kind: Kind
    position: int
    detail: str


class SignedPosition(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    signed_at: datetime
    key_id: str


class LogReport(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    tenant: str
    intact: bool
    # The last position verified (the log's head when intact).
    position: int
    events: int
    # The last checkpoint verified: the log is signed up to its position.
    signed: SignedPosition | None
    checkpoints: int
    problem: Problem | None
    summary: str
    # Where the checkpoints came from: "database", "stream" (the JetStream record, which
    # cannot be deleted from); without "stream" a log cut short together with its
    # checkpoints in the database goes unnoticed.
    sources: list[str] = msgspec.field(default_factory=list)


class ChainSegment(msgspec.Struct, frozen=True, kw_only=True):
    """Where a verification starts: after `position`, whose hash is `head_hash` (None:
    from the first event)."""

    position: int
    head_hash: bytes | None


class SegmentOutcome(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    head_hash: bytes | None
    events: int
    problem: Problem | None


class _Row(msgspec.Struct, frozen=True, array_like=True):
    position: int
    record_id: Any
    version: int
    topic: str
    state: bytes
    hash: bytes | None


class _Rows:
    """The log after a position, in order, with a look ahead."""

    def __init__(self, conn: DbConnection, service: str, tenant: str, after: int) -> None:
        self._conn = conn
        self._query = (
            "SELECT notification_id, originator_id, originator_version, topic, state, hash "
            f"FROM {tenant_schema(service, tenant)}.{events_table(service)} "
            "WHERE notification_id > $1 ORDER BY notification_id"
        )
        self._after = after
        self._cursor: Any = None
        self._buffer: deque[_Row] = deque()
        self._exhausted = False

    async def _fill(self, wanted: int) -> None:
        if self._cursor is None:
            self._cursor = await self._conn.cursor(self._query, self._after)
        while len(self._buffer) < wanted and not self._exhausted:
            rows = await self._cursor.fetch(BATCH)
            if len(rows) < BATCH:
                self._exhausted = True
            self._buffer.extend(
                _Row(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else bytes(r[5]))
                for r in rows
            )

    async def batch(self) -> list[_Row]:
        """The rows already fetched (at least one unless the log ends), taken."""
        await self._fill(1)
        rows = list(self._buffer)
        self._buffer.clear()
        return rows

    async def ahead(self, rows: list[_Row], at: int) -> list[_Row]:
        """Up to LOOKAHEAD rows after `rows[at]` (fetching more when needed)."""
        after = rows[at + 1 :]
        if len(after) < LOOKAHEAD:
            await self._fill(LOOKAHEAD - len(after))
            after += list(islice(self._buffer, LOOKAHEAD - len(after)))
        return after[:LOOKAHEAD]


def _hash(prefix: bytes, previous: bytes | None, position: int, row: _Row) -> bytes | None:
    """`row`'s hash were it standing at `position` after an event whose hash is
    `previous`."""
    if previous is None:
        return None
    return event_hash(previous, prefix, position, row.record_id, row.version, row.topic, row.state)


class _Head(msgspec.Struct, kw_only=True):
    """The chain verified so far: the last event's position and hash, and the hash before
    it (to tell an event inserted with a correct hash from the one after it)."""

    position: int
    hash: bytes
    earlier: bytes | None


def _diagnose(prefix: bytes, head: _Head, row: _Row, ahead: list[_Row]) -> Problem:
    """What is wrong at `row`, the first event whose hash does not follow from `head`."""
    following = ahead[0] if ahead else None
    # Inserted, with a hash made to fit: this event chains on from the one before the head.
    if head.earlier is not None and row.hash in (
        _hash(prefix, head.earlier, head.position, row),
        _hash(prefix, head.earlier, row.position, row),
    ):
        return Problem(
            kind="inserted",
            position=head.position,
            detail=f"the event at position {head.position} was never appended: the one "
            "after it chains on from the one before it",
        )
    # Reordered: the event recorded at this position stands further on (with its hash, or
    # its hash stayed here), and this one belongs where that one stands.
    for index, other in enumerate(ahead):
        if _hash(prefix, head.hash, row.position, other) not in (row.hash, other.hash):
            continue
        before_other = ahead[index - 1].hash if index > 0 else row.hash
        for before in (before_other, other.hash, row.hash):
            if _hash(prefix, before, other.position, row) in (row.hash, other.hash):
                return Problem(
                    kind="reordered",
                    position=row.position,
                    detail=f"the event recorded at position {row.position} stands at "
                    f"position {other.position}, and the one recorded there stands here",
                )
    # Inserted: the event after this one chains on from the head, as if this one were not
    # there (standing where it stands, or where this one stands).
    if following is not None and following.hash in (
        _hash(prefix, head.hash, following.position, following),
        _hash(prefix, head.hash, row.position, following),
    ):
        return Problem(
            kind="inserted",
            position=row.position,
            detail=f"the event at position {row.position} was never appended: the one "
            f"after it chains on from position {head.position}",
        )
    # Removed: positions are missing, and the event after the gap is the one recorded
    # there (its hash leads on to the next event).
    if row.position > head.position + 1 and (
        following is None
        or _hash(prefix, row.hash, following.position, following) == following.hash
    ):
        first, gap_end = head.position + 1, row.position - 1
        missing = f"position {first}" if first == gap_end else f"positions {first} to {gap_end}"
        return Problem(
            kind="removed",
            position=first,
            detail=f"{missing} missing: the event at position {row.position} follows "
            f"another event than the one at position {head.position}",
        )
    # Removed, and the gap hidden: the events after it were moved down, each still
    # chaining on from the one before it at the position it was recorded at.
    if following is not None:
        for shift in range(1, RENUMBERED + 1):
            if _hash(prefix, row.hash, following.position + shift, following) == following.hash:
                return Problem(
                    kind="removed",
                    position=row.position,
                    detail=f"{shift} event(s) removed at position {row.position}, and the "
                    f"events after them moved down {shift} position(s)",
                )
    what = "has no hash" if row.hash is None else "differs from what was recorded"
    return Problem(
        kind="altered", position=row.position, detail=f"the event at position {row.position} {what}"
    )


def _check(
    checkpoint: Checkpoint, head: _Head, keys: dict[str, Ed25519PublicKey] | None
) -> Problem | None:
    """A checkpoint at or before the next event, against the chain verified so far."""
    at = checkpoint.signed_at.isoformat()
    if keys is not None and not checkpoint.verifies(keys):
        return Problem(
            kind="bad signature",
            position=checkpoint.position,
            detail=f"the checkpoint at position {checkpoint.position} (signed at {at}, key "
            f"{checkpoint.key_id}) does not verify with a trusted key",
        )
    if checkpoint.position != head.position:
        return Problem(
            kind="removed",
            position=head.position + 1,
            detail=f"the log holds no event at position {checkpoint.position} (the chain goes "
            f"from position {head.position} on), but a checkpoint signed at {at} covers it",
        )
    if checkpoint.head_hash != head.hash:
        return Problem(
            kind="checkpoint mismatch",
            position=checkpoint.position,
            detail=f"the log up to position {checkpoint.position} is not the one signed at "
            f"{at}: it was rewritten at or before that position",
        )
    return None


async def verify_segment(
    conn: DbConnection,
    service: str,
    tenant: str,
    start: ChainSegment,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    keys: dict[str, Ed25519PublicKey] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SegmentOutcome:
    """Recompute the chain after `start` up to the log's head, checking `checkpoints`
    (after `start`) on the way, and signatures unless `keys` is None; stops at the first
    problem."""
    prefix = log_prefix(service, tenant)
    rows = _Rows(conn, service, tenant, start.position)
    pending = deque(sorted(checkpoints, key=lambda c: c.position))
    head = _Head(position=start.position, hash=start.head_hash or GENESIS, earlier=None)
    events = 0

    def outcome(problem: Problem | None) -> SegmentOutcome:
        return SegmentOutcome(
            position=head.position,
            head_hash=head.hash if events or start.head_hash else None,
            events=events,
            problem=problem,
        )

    while batch := await rows.batch():
        for index, row in enumerate(batch):
            # Checkpoints the chain has reached (one at a position the log skips, too).
            while pending and pending[0].position < row.position:
                problem = _check(pending.popleft(), head, keys)
                if problem is not None:
                    return outcome(problem)
            expected = event_hash(
                head.hash, prefix, row.position, row.record_id, row.version, row.topic, row.state
            )
            if expected != row.hash:
                return outcome(_diagnose(prefix, head, row, await rows.ahead(batch, index)))
            head.earlier, head.hash, head.position = head.hash, expected, row.position
            events += 1
        if progress is not None:
            progress(len(batch))
    # Checkpoints past the end: the log was cut short (or the checkpoint is forged).
    for checkpoint in pending:
        problem = _check(checkpoint, head, keys)
        if problem is not None:
            return outcome(problem)
    return outcome(None)


def _merge(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """One copy of each distinct checkpoint (the database's and the stream's agree unless
    one was tampered with: then both are checked)."""
    seen: dict[tuple[int, bytes, bytes], Checkpoint] = {}
    for checkpoint in checkpoints:
        seen.setdefault(
            (checkpoint.position, checkpoint.head_hash, checkpoint.signature), checkpoint
        )
    return sorted(seen.values(), key=lambda c: (c.position, c.signed_at))


async def verify_log(
    conn: DbConnection,
    service: str,
    tenant: str,
    *,
    checkpoints: Iterable[Checkpoint],
    keys: dict[str, Ed25519PublicKey],
    progress: Callable[[int], None] | None = None,
) -> LogReport:
    """The whole log of (service, tenant), from its first event."""
    merged = _merge(checkpoints)
    outcome = await verify_segment(
        conn,
        service,
        tenant,
        ChainSegment(position=0, head_hash=None),
        checkpoints=merged,
        keys=keys,
        progress=progress,
    )
    covered = [c for c in merged if c.position <= outcome.position]
    signed = (
        SignedPosition(
            position=covered[-1].position,
            signed_at=covered[-1].signed_at,
            key_id=covered[-1].key_id,
        )
        if covered and outcome.problem is None
        else None
    )
    if outcome.problem is not None:
        summary = f"{outcome.problem.kind} at position {outcome.problem.position}: "
        summary += outcome.problem.detail
    elif signed is None:
        summary = f"intact up to position {outcome.position}, not signed yet"
    else:
        summary = f"intact up to position {outcome.position}"
        if signed.position != outcome.position:
            summary += f", signed up to position {signed.position}"
        summary += f", signed at {signed.signed_at.isoformat()}"
    return LogReport(
        service=service,
        tenant=tenant,
        intact=outcome.problem is None,
        position=outcome.position,
        events=outcome.events,
        signed=signed,
        checkpoints=len(merged),
        problem=outcome.problem,
        summary=summary,
    )


async def log_size(conn: DbConnection, service: str, tenant: str) -> int:
    """The head position (the number of events, as positions have no gaps): for progress."""
    table = f"{tenant_schema(service, tenant)}.{events_table(service)}"
    value = await conn.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {table}")
    return int(value)
