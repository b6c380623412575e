"""Rebuilding the read model of a reaction (a projection of another service's events, kept
by the consumer of that service's stream, `shared.messaging.consumer`) from the source's
events feed: what `mpks rebuild` does for a service's own projections from its log.

Each tenant in one transaction: its rows go and every event of its log at the source is
applied again, so a reader sees the old rows or the rebuilt ones, never a half-empty
table, and a tenant whose replay fails keeps its rows (it is named; the others go on).
The running consumer needs no pause: its writes to a row the rebuild holds wait for the
rebuild's commit and then apply on top (a reaction's writes are guarded by the source
version, so an event seen twice is a no-op); its own bookkeeping (positions, processed
messages) is not touched.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.db.pool import DbPool, tenant_transaction
from shared.messaging.consumer import EventSource, Reaction
from shared.projections.dispatch import Dispatch
from shared.resilience.faults import SourceUnavailable, describe, is_outage


async def rebuild_reaction(
    pool: DbPool,
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
            events = await source.read(tenant, 0, None)
        except Exception as exc:
            raise SourceUnavailable(f"events feed of tenant {tenant}: {describe(exc)}") from exc
        try:
            async with tenant_transaction(pool, tenant) as conn:
                for table in reaction.tables:
                    # Row-level security: the tenant's rows only.
                    await conn.execute(f"DELETE FROM {table}")
                for event in events:
                    await dispatch.deliver(conn, event)
        except Exception as exc:
            if is_outage(exc):
                raise
            failed[tenant] = describe(exc)
            continue
        replayed += len(events)
    return replayed, failed
