"""Rebuilding the read model of a reaction (a projection of another service's events, kept
by the consumer of that service's stream, `shared.messaging.consumer`) from the source's
events feed: what `mpks rebuild` does for a service's own projections from its log.

Each tenant in one transaction: its rows go and every event of its log at the source is
applied again, so a reader sees the old rows or the rebuilt ones, never a half-empty
table, and a tenant whose replay fails keeps its rows (it is named; the others go on).
The running consumer needs no pause, but must not write in between: the transaction
first locks the service's `processed_messages` against writes, which every message the
consumer applies starts with, and reads the feed only then. A message the consumer had
applied is in the feed by then (the source committed it before publishing); one that
arrives meanwhile waits for the commit and applies on top (a reaction's writes are
guarded by the source version, so an event seen twice is a no-op). The consumer's own
bookkeeping (positions, processed messages) is not touched.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.db.pool import DbPool, tenant_transaction
from shared.eventstore.envelope import EventEnvelope
from shared.messaging.consumer import EventSource, Reaction
from shared.projections.dispatch import Dispatch
from shared.resilience.faults import SourceUnavailable, describe, is_outage


async def rebuild_reaction(
    pool: DbPool,
    schema: str,
    reaction: Reaction,
    dispatch: Dispatch,
    source: EventSource,
    tenants: Iterable[str],
) -> tuple[int, dict[str, str]]:
    """Events replayed, and the tenants whose replay failed with why (their rows as they
    were). An outage of the source (`SourceUnavailable`) or of PostgreSQL ends the rebuild:
    the tenants done so far are rebuilt, the others as they were."""
    replayed = 0
    failed: dict[str, str] = {}
    for tenant in tenants:
        try:
            async with tenant_transaction(pool, tenant) as conn:
                await conn.execute(
                    f"LOCK TABLE {schema}.processed_messages IN SHARE ROW EXCLUSIVE MODE"
                )
                for table in reaction.tables:
                    # Row-level security: the tenant's rows only.
                    await conn.execute(f"DELETE FROM {table}")
                events = await _read_all(source, tenant)
                for event in events:
                    await dispatch.deliver(conn, event)
        except Exception as exc:
            if is_outage(exc):
                raise
            failed[tenant] = describe(exc)
            continue
        replayed += len(events)
    return replayed, failed


async def _read_all(source: EventSource, tenant: str) -> list[EventEnvelope]:
    try:
        return await source.read(tenant, 0, None)
    except Exception as exc:
        raise SourceUnavailable(f"events feed of tenant {tenant}: {describe(exc)}") from exc
