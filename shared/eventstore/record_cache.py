"""The stored events of records that commands consult without changing them (the council a
registration is placed in, the unit that will decide a proposal), kept in the process so the
command need not read them again each time: on the busiest command, registering an
institution, that read was one of its two round trips.

Never trusted blindly: a command names each record it consulted with the version it read,
and its append refuses it if the record changed since (`shared.eventstore.functions`). The
command then runs again on what is recorded now (`shared.service_layer.messagebus`), as it
does when it was refused after consulting (a unit opened a moment ago in another process).
Events are immutable, so what is kept is always true of its version; only its being the
latest may not be. Bounded, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from uuid import UUID

# (version, topic, state) as the log stores them.
Rows = tuple[tuple[int, str, bytes], ...]


class RecordCache:
    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._rows: OrderedDict[tuple[str, UUID], Rows] = OrderedDict()

    def get(self, tenant: str, record_id: UUID) -> Rows | None:
        rows = self._rows.get((tenant, record_id))
        if rows is not None:
            self._rows.move_to_end((tenant, record_id))
        return rows

    def put(self, tenant: str, record_id: UUID, rows: Rows) -> None:
        self._rows[(tenant, record_id)] = rows
        self._rows.move_to_end((tenant, record_id))
        while len(self._rows) > self.size:
            self._rows.popitem(last=False)

    def drop(self, tenant: str, record_ids: Iterable[UUID]) -> None:
        for record_id in record_ids:
            self._rows.pop((tenant, record_id), None)
