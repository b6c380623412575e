"""Issues due deadlines (`shared.scheduling.deadlines`) on the service's bus: one leader per
service (`ServiceRuntime._as_leader`), polling each province's deadlines in that tenant's
own transaction (the table has row-level security like every tenant's rows: a pass is 38
small indexed reads).

Each due deadline becomes its command, with a system actor reaching the whole province and
the idempotency key `deadline:<key>:<message id of the event that set it>`: issued twice, it
records its effect once (the second gets the first's reply). Then the row goes, unless an
event replaced it meanwhile. Deadlines that fell due while no scheduler ran (downtime) are
due at the first pass. A command the service refuses (a rule, or a bug) is kept with the
reason and retried later, backing off, without holding up the others (health, metrics and
`mpks status` show it: `shared.scheduling.report`). An outage of PostgreSQL ends the pass:
the loop keeps running, says what it waits on (`waiting_on`, shown by health) and tries
again each poll; nothing is lost meanwhile, since a deadline leaves its table only once its
command is recorded, and issuing it again after an outage hit between the two records
nothing twice (the idempotency key).

The clock is injected: `due_at <= clock.now()` is all "due" means, so tests move time.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from shared.db.pool import tenant_transaction
from shared.domain.organisation import PROVINCE
from shared.eventstore.context import CommandContext
from shared.resilience.faults import describe, is_outage
from shared.resilience.supervisor import pause
from shared.scheduling.report import DeadlineReport, deadline_report
from shared.service_layer.commands import Command
from shared.service_layer.messagebus import MessageBus, fingerprint
from shared.service_layer.ports import Clock
from shared.tenancy import province_codes

log = logging.getLogger(__name__)

ACTOR = "scheduler"
# A refused deadline waits 1, 2, 4 … minutes, at most a day, before it is tried again.
_LONGEST_WAIT = timedelta(days=1)
# A deadline still pending this many polls after it fell due is overdue: a pass issues what
# is due, so one poll of delay is normal and a second is slack for a slow pass.
OVERDUE_AFTER_POLLS = 2


class Scheduler:
    def __init__(
        self,
        *,
        schema: str,
        pool: asyncpg.Pool[Any],
        bus: MessageBus,
        clock: Clock,
        poll_seconds: float = 10.0,
        batch_size: int = 100,
    ) -> None:
        self.schema = schema
        self.pool = pool
        self.bus = bus
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.commands: dict[str, type[Command]] = {c.__name__: c for c in bus.handlers.commands}
        # Why the last pass failed (PostgreSQL unreachable), for health; None: fine.
        self.waiting_on: str | None = None
        self._due = f"""
            SELECT tenant_id, key, command, payload, scheduled_by, attempts
            FROM {schema}.deadlines
            WHERE tenant_id = current_setting('app.tenant_id') AND due_at <= $1
              AND (retry_at IS NULL OR retry_at <= $1)
            ORDER BY due_at, key LIMIT $2"""
        self._done = f"""
            DELETE FROM {schema}.deadlines
            WHERE tenant_id = $1 AND key = $2 AND scheduled_by = $3"""
        self._failed = f"""
            UPDATE {schema}.deadlines
            SET attempts = attempts + 1, last_error = $4, retry_at = $5
            WHERE tenant_id = $1 AND key = $2 AND scheduled_by = $3"""

    async def run(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                # Again at once while there was work: a backlog (after downtime) goes in
                # batches.
                while await self.issue_due() and not stop.is_set():
                    pass
            except Exception as exc:
                # Not a crash: the deadlines wait in their table for the next pass. The
                # trace once, then only health says it, until a pass goes through.
                if not failing:
                    log.exception("scheduler pass failed; retrying every %ss", self.poll_seconds)
                failing = True
                self.waiting_on = describe(exc)
            else:
                failing = False
                self.waiting_on = None
            await pause(stop, self.poll_seconds)

    async def report(self) -> DeadlineReport:
        """The deadlines an operator must see: overdue and refused (`report.py`)."""
        overdue_before = self.clock.now() - timedelta(
            seconds=OVERDUE_AFTER_POLLS * self.poll_seconds
        )
        return await deadline_report(self.pool, self.schema, province_codes(), overdue_before)

    async def issue_due(self) -> int:
        """Issue the deadlines due now (at most a batch per tenant); returns how many."""
        now = self.clock.now()
        issued = 0
        for tenant in sorted(province_codes()):
            async with tenant_transaction(self.pool, tenant) as conn:
                rows = await conn.fetch(self._due, now, self.batch_size)
            for row in rows:
                await self._settle(tenant, row, now)
            issued += len(rows)
        return issued

    async def _settle(self, tenant: str, row: asyncpg.Record, now: datetime) -> None:
        """Issue one deadline: its row goes once issued; a refusal is kept to retry."""
        key, scheduled_by = row["key"], row["scheduled_by"]
        try:
            await self._issue(tenant, key, row["command"], row["payload"], scheduled_by)
        except Exception as exc:
            if is_outage(exc):
                raise
            wait = min(timedelta(minutes=2 ** min(row["attempts"], 11)), _LONGEST_WAIT)
            log.warning("deadline %s of tenant %s refused: %s", key, tenant, describe(exc))
            async with tenant_transaction(self.pool, tenant) as conn:
                await conn.execute(
                    self._failed, tenant, key, scheduled_by, describe(exc), now + wait
                )
            return
        async with tenant_transaction(self.pool, tenant) as conn:
            await conn.execute(self._done, tenant, key, scheduled_by)

    async def _issue(
        self, tenant: str, key: str, name: str, payload: str, scheduled_by: str
    ) -> None:
        command = msgspec.json.decode(payload, type=self.commands[name])
        ctx = CommandContext(
            tenant=tenant,
            actor=ACTOR,
            correlation_id=f"deadline:{key}",
            causation_id=scheduled_by,
            scope=PROVINCE,
        )
        idempotency_key = f"deadline:{key}:{scheduled_by}"
        await self.bus.execute(
            command,
            ctx,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint(idempotency_key, msgspec.to_builtins(command)),
        )
