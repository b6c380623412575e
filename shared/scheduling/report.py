"""The deadlines an operator must see (`/health/ready`, metrics, `mpks status`):

- **overdue**: still pending two polls after it fell due, and never refused: no scheduler
  issued it (none leads — the workers are down, or waiting on PostgreSQL — or it is stuck);
- **refused**: its command failed (a rule refused it, or a bug: an unknown command, a payload
  that no longer decodes). The scheduler keeps it with the reason and tries again, backing
  off to once a day: it neither loops nor disappears. After a fix, `mpks retry` makes it
  due at once; it leaves the table, like every deadline, once its command is recorded.

Either makes the service `degraded`. The read is one round trip for every province
(`{schema}.deadlines_needing_attention`, shared/db/sql/kernel.sql), each tenant read under
its own row-level security, by any instance: an overdue deadline shows even when the
scheduler that should issue it is not running.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

# Refused deadlines listed in full per tenant and in all (the counts are always complete): a
# bug refusing thousands of deadlines must not make every health answer huge.
REFUSALS_SHOWN = 20


class RefusedDeadline(msgspec.Struct, frozen=True, kw_only=True):
    tenant: str
    key: str
    command: str
    due_at: datetime
    attempts: int
    reason: str
    # When the scheduler tries it again (None: at its next pass, e.g. after `mpks retry`).
    retry_at: datetime | None


class DeadlineReport(msgspec.Struct, frozen=True, kw_only=True):
    overdue: int
    # When the longest-overdue deadline fell due (None: none overdue).
    oldest_overdue: datetime | None
    refused: int
    # The first refused deadlines, by due time (at most REFUSALS_SHOWN).
    refusals: list[RefusedDeadline]

    @property
    def needs_attention(self) -> bool:
        return self.overdue > 0 or self.refused > 0


async def deadline_report(
    db: asyncpg.Pool[Any] | asyncpg.Connection[Any],
    schema: str,
    tenants: Iterable[str],
    overdue_before: datetime,
) -> DeadlineReport:
    rows = await db.fetch(
        f"SELECT * FROM {schema}.deadlines_needing_attention($1, $2, $3)",
        sorted(tenants),
        overdue_before,
        REFUSALS_SHOWN,
    )
    overdue: dict[str, int] = {}
    refused: dict[str, int] = {}
    oldest: datetime | None = None
    refusals: list[RefusedDeadline] = []
    for row in rows:
        overdue[row["tenant"]] = row["overdue"]
        refused[row["tenant"]] = row["refused"]
        if row["oldest_overdue"] is not None and (oldest is None or row["oldest_overdue"] < oldest):
            oldest = row["oldest_overdue"]
        if row["attempts"] > 0:
            refusals.append(
                RefusedDeadline(
                    tenant=row["tenant"],
                    key=row["key"],
                    command=row["command"],
                    due_at=row["due_at"],
                    attempts=row["attempts"],
                    reason=row["last_error"] or "",
                    retry_at=row["retry_at"],
                )
            )
    refusals.sort(key=lambda r: (r.due_at, r.tenant, r.key))
    return DeadlineReport(
        overdue=sum(overdue.values()),
        oldest_overdue=oldest,
        refused=sum(refused.values()),
        refusals=refusals[:REFUSALS_SHOWN],
    )


async def request_deadline_retry(
    conn: asyncpg.Connection[Any], schema: str, tenant: str | None = None
) -> int:
    """Make refused deadlines due now (after a fix), as the owner (every tenant's rows): the
    running scheduler tries them at its next pass. They keep their reason until their
    command is recorded. Returns how many."""
    result = await conn.execute(
        f"""UPDATE {schema}.deadlines SET retry_at = NULL
            WHERE attempts > 0 AND ($1::text IS NULL OR tenant_id = $1)""",
        tenant,
    )
    return int(result.split()[-1])
