"""Group commit on a tenant's log: the commands of this process that reach their append
while another append to the same log is under way share the next call to `append_events`
(`shared.eventstore.functions`), so one table lock, one transaction and one round trip serve
them all.

Nothing waits on purpose: when no append to the log is under way, a command's append goes
at once. Each command still gets its own answer: the positions of its own events, or
`ConcurrentWrite` when one of its record versions or its Idempotency-Key was taken, which
the function decides per command under the lock without touching the others.

The call runs on the connection of one of the commands it carries (the first in line), so
group commit needs no connection of its own: a command holds its connection from admission
to answer, and the pool bounds how many commands run at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.persistence import StoredEvent

from shared.db.pool import DbConnection
from shared.service_layer.unit_of_work import ConcurrentWrite, IdempotencyRecord, StaleRead

# Resolves a waiting command's turn when it is first in line for the next call.
_LEAD: Any = object()


class _Append:
    __slots__ = ("answer", "events", "reads", "record")

    def __init__(
        self,
        events: Sequence[StoredEvent],
        record: IdempotencyRecord | None,
        reads: Mapping[UUID, int],
    ) -> None:
        self.events = events
        self.record = record
        self.reads = reads
        self.answer: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()


class TenantAppends:
    """The appends to one tenant's log, in line for `append_events`."""

    def __init__(self, statement: str, tenant: str) -> None:
        self._statement = statement
        self._tenant = tenant
        self._waiting: deque[_Append] = deque()
        # A call is under way, or the first in line has been told it is its turn.
        self._busy = False

    async def append(
        self,
        conn: DbConnection,
        events: Sequence[StoredEvent],
        record: IdempotencyRecord | None,
        reads: Mapping[UUID, int],
    ) -> list[int]:
        """The positions of `events`, appended with `record` in one transaction (with other
        commands' appends); raises ConcurrentWrite when a version or the key is taken,
        StaleRead when a record of `reads` (id: the version the command read) changed."""
        mine = _Append(events, record, reads)
        self._waiting.append(mine)
        if self._busy:
            try:
                turn = await mine.answer
            except asyncio.CancelledError:
                self._leave(mine)
                raise
            if turn is not _LEAD:
                return turn
            mine.answer = asyncio.get_running_loop().create_future()
        self._busy = True
        batch = self._take()
        if len(batch) == 1:
            # Nobody else's answer rides on this call.
            await self._call(conn, batch)
            return mine.answer.result()
        call = asyncio.ensure_future(self._call(conn, batch))
        try:
            await asyncio.shield(call)
        except asyncio.CancelledError:
            # The other commands' answers ride on this call, on this command's connection:
            # it must end before the connection goes back to the pool.
            await asyncio.wait({call})
            raise
        return mine.answer.result()

    def _leave(self, mine: _Append) -> None:
        """A waiting command was cancelled: it leaves the line, passing its turn on."""
        if mine in self._waiting:
            self._waiting.remove(mine)
            if mine.answer.done() and not mine.answer.cancelled():
                self._next()

    def _take(self) -> list[_Append]:
        """Everything in line (but the commands cancelled while waiting)."""
        batch = [a for a in self._waiting if not a.answer.cancelled()]
        self._waiting.clear()
        return batch

    def _next(self) -> None:
        """Tells the first in line it is its turn to call, or marks the log idle."""
        while self._waiting:
            first = self._waiting[0]
            if not first.answer.done():
                first.answer.set_result(_LEAD)
                return
            self._waiting.popleft()
        self._busy = False

    async def _call(self, conn: DbConnection, batch: list[_Append]) -> None:
        try:
            await self._send(conn, batch)
        finally:
            self._next()

    async def _send(self, conn: DbConnection, batch: list[_Append]) -> None:
        commands: list[int] = []
        events: list[StoredEvent] = []
        readers: list[int] = []
        read_ids: list[UUID] = []
        read_versions: list[int] = []
        for number, append in enumerate(batch, start=1):
            commands.extend([number] * len(append.events))
            events.extend(append.events)
            for record_id, version in append.reads.items():
                readers.append(number)
                read_ids.append(record_id)
                # The next version: recorded since means changed since.
                read_versions.append(version + 1)
        records = [a.record for a in batch]
        try:
            row = await conn.fetchrow(
                self._statement,
                self._tenant,
                commands,
                [e.originator_id for e in events],
                [e.originator_version for e in events],
                [e.topic for e in events],
                [e.state for e in events],
                [r.key if r else None for r in records],
                [r.fingerprint if r else None for r in records],
                [r.reply if r else None for r in records],
                readers,
                read_ids,
                read_versions,
            )
        except asyncpg.UniqueViolationError as exc:
            # A command alone whose version or key was taken (the function checks only calls
            # of several), or two commands of one call claiming one version or key (a retry
            # arriving with its first attempt): the whole call rolled back. One command
            # alone: that is its answer; several: each tries alone, so only its own counts.
            if len(batch) == 1:
                _answer(batch[0], error=ConcurrentWrite(str(exc)))
                return
            for append in batch:
                await self._send(conn, [append])
            return
        except asyncio.CancelledError:
            for append in batch:
                append.answer.cancel()
            raise
        except Exception as exc:
            # The same failure (PostgreSQL gone, a timeout) for every command of the call.
            for append in batch:
                _answer(append, error=exc)
            return
        assert row is not None  # a function's call is one row
        refused, stale = set(row["refused"]), set(row["stale"])
        taken = iter(row["positions"])
        for number, append in enumerate(batch, start=1):
            if number in stale:
                _answer(append, error=StaleRead(f"command {number} of its call read old records"))
            elif number in refused:
                # Another command recorded one of these versions, or this Idempotency-Key.
                _answer(append, error=ConcurrentWrite(f"command {number} of its call refused"))
            else:
                _answer(append, [next(taken) for _ in append.events])


def _answer(
    append: _Append, positions: list[int] | None = None, *, error: BaseException | None = None
) -> None:
    if append.answer.done():  # its command was cancelled while the call ran
        return
    if error is not None:
        append.answer.set_exception(error)
    else:
        append.answer.set_result(positions or [])
