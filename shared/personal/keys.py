"""The subject keys of one service: created on the command path, cached, erased.

Keys live in `<service>.subject_keys` (row-level security per tenant), wrapped under the
master key. Unwrapped keys are cached in memory, bounded (least recently used goes first),
so a command on a record whose key is cached pays no round trip for it. An erased subject
is cached as erased for good: a key never comes back. An erasure is announced to the
service's other processes after its commit (`shared.personal.erasure`), which read the
subject as erased from then on; a live key is trusted for `cache_seconds` at most in any
case (the bound when an announcement is lost with a listening connection).
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from shared.db.pool import DbConnection
from shared.domain.errors import Conflict
from shared.domain.messages import Message
from shared.eventstore.envelope import EventEnvelope
from shared.personal.cipher import new_data_key, open_value, seal_value, unwrap_key, wrap_key
from shared.personal.fields import ERASED, is_sealed

CACHE_SIZE = 10_000
CACHE_SECONDS = 30.0


class KeyNotLoaded(RuntimeError):
    """A value was to be sealed or opened before its subject's key was loaded: a bug in the
    caller, never a reason to store or show anything in plaintext."""


class Erasure(enum.Enum):
    UNKNOWN = "unknown"
    ERASED = "erased"
    ALREADY_ERASED = "already erased"


class SubjectKeys:
    def __init__(
        self,
        service: str,
        master: bytes,
        *,
        cache_size: int = CACHE_SIZE,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self._master = master
        self._size = cache_size
        self._seconds = cache_seconds
        self._clock = clock
        # (tenant, subject) -> (data key, or None once erased; when it stops being trusted)
        self._cache: OrderedDict[tuple[str, str], tuple[bytes | None, float]] = OrderedDict()
        self._ensure = f"SELECT subject, wrapped FROM {service}.subject_keys_ensure($1, $2, $3)"
        self._of = f"SELECT subject, wrapped FROM {service}.subject_keys_of($1, $2)"
        self._table = f"{service}.subject_keys"

    # The cache.

    def _cached(self, tenant: str, subject: str) -> tuple[bytes | None] | None:
        """(key or None if erased), or None when not cached (or no longer trusted)."""
        entry = self._cache.get((tenant, subject))
        if entry is None:
            return None
        key, until = entry
        if key is not None and until < self._clock():
            del self._cache[(tenant, subject)]
            return None
        self._cache.move_to_end((tenant, subject))
        return (key,)

    def _keep(self, tenant: str, rows: Iterable[Any]) -> None:
        until = self._clock() + self._seconds
        for row in rows:
            subject, wrapped = row["subject"], row["wrapped"]
            key = (
                None
                if wrapped is None
                else unwrap_key(
                    self._master,
                    bytes(wrapped),
                    service=self.service,
                    tenant=tenant,
                    subject=subject,
                )
            )
            known = self._cache.get((tenant, subject))
            if known is not None and known[0] is None:
                # Erased for good: a read that began before the erasure committed brings
                # back the key it saw, and must not make it live again.
                continue
            self._cache[(tenant, subject)] = (key, until)
            self._cache.move_to_end((tenant, subject))
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def forget_live(self) -> None:
        """Drop every live key (erasures stay): announcements of erasures may have been
        missed, so every key is looked up again."""
        for entry, (key, _) in list(self._cache.items()):
            if key is not None:
                del self._cache[entry]

    def erased(self, tenant: str, subject: str) -> None:
        """The subject's erasure committed: its key reads as erased from now on in this
        process, whatever a read that was in flight during the erasure saw."""
        self._cache[(tenant, subject)] = (None, 0.0)
        self._cache.move_to_end((tenant, subject))

    # Loading keys (async: one round trip for every key not cached).

    async def ensure(self, conn: DbConnection, tenant: str, subjects: Iterable[str]) -> None:
        """The command path, before its events are sealed: every subject gets a key (made
        now if it has none). New personal data of an erased subject is refused."""
        missing = sorted({s for s in subjects if self._cached(tenant, s) is None})
        if missing:
            wrapped = [
                wrap_key(
                    self._master, new_data_key(), service=self.service, tenant=tenant, subject=s
                )
                for s in missing
            ]
            self._keep(tenant, await conn.fetch(self._ensure, tenant, missing, wrapped))
        for subject in subjects:
            cached = self._cached(tenant, subject)
            if cached is not None and cached[0] is None:
                raise Conflict(
                    Message(
                        "the personal data of {subject} was erased: none can be recorded again",
                        subject=subject,
                    )
                )

    async def load(self, conn: DbConnection, tenant: str, subjects: Iterable[str]) -> None:
        """Readers, before opening sealed values: the keys of `subjects` (a subject without
        a key row opens as erased: nothing can open it)."""
        missing = sorted({s for s in subjects if self._cached(tenant, s) is None})
        if not missing:
            return
        rows = await conn.fetch(self._of, tenant, missing)
        self._keep(tenant, rows)
        found = {row["subject"] for row in rows}
        self._keep(tenant, ({"subject": s, "wrapped": None} for s in missing if s not in found))

    # Sealing and opening (sync, from the cache: the mapper runs in no event loop step).

    def seal(self, tenant: str, subject: str, field: str, value: Any) -> dict[str, str]:
        cached = self._cached(tenant, subject)
        if cached is None or cached[0] is None:
            raise KeyNotLoaded(f"no key loaded for subject {subject} of tenant {tenant}")
        return seal_value(
            cached[0], value, service=self.service, tenant=tenant, subject=subject, field=field
        )

    def open(self, tenant: str, field: str, sealed: Mapping[str, Any]) -> Any:
        subject = str(sealed.get("subject"))
        cached = self._cached(tenant, subject)
        if cached is None:
            raise KeyNotLoaded(f"no key loaded for subject {subject} of tenant {tenant}")
        if cached[0] is None:
            return ERASED
        return open_value(cached[0], sealed, service=self.service, tenant=tenant, field=field)

    def open_data(self, tenant: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.open(tenant, k, v) if is_sealed(v) else v for k, v in data.items()}

    async def reveal(
        self, conn: DbConnection, tenant: str, envelopes: Sequence[EventEnvelope]
    ) -> list[EventEnvelope]:
        """The owning service's readers (projections, history): its events with personal
        values open (or `ERASED`). Never for the relay, the feed or exports."""
        subjects = {s for e in envelopes for s in sealed_subjects(e.data)}
        if not subjects:
            return list(envelopes)
        await self.load(conn, tenant, subjects)
        return [self.opened(tenant, e) for e in envelopes]

    def opened(self, tenant: str, envelope: EventEnvelope) -> EventEnvelope:
        """`envelope` with its personal values open, its subjects' keys loaded already."""
        if not any(is_sealed(v) for v in envelope.data.values()):
            return envelope
        return msgspec.structs.replace(envelope, data=self.open_data(tenant, envelope.data))

    # Erasure.

    async def erase(self, conn: DbConnection, tenant: str, subject: str) -> Erasure:
        """Destroy the subject's key, in the caller's tenant transaction."""
        row = await conn.fetchrow(
            f"SELECT erased_at FROM {self._table} WHERE tenant_id = $1 AND subject = $2 FOR UPDATE",
            tenant,
            subject,
        )
        if row is None:
            return Erasure.UNKNOWN
        if row["erased_at"] is not None:
            return Erasure.ALREADY_ERASED
        await conn.execute(
            f"UPDATE {self._table} SET wrapped = NULL, erased_at = now() "
            "WHERE tenant_id = $1 AND subject = $2",
            tenant,
            subject,
        )
        return Erasure.ERASED


def sealed_subjects(data: Mapping[str, Any]) -> set[str]:
    return {str(v.get("subject")) for v in data.values() if is_sealed(v)}
