"""Policies read model: one row per policy, its state now; the approval inbox of a council
(what awaits its decision) and the policies of an institution or a council."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from uuid import UUID

import msgspec

from services.registry.domain.organisation_unit import UnitKind, unit_id
from services.registry.domain.policy import Policy, PolicyLevel, PolicyStatus
from shared.db.pool import DbConnection
from shared.eventstore.envelope import EventEnvelope
from shared.projections.queries import Query

TABLE = "registry.policies"


class PolicyView(msgspec.Struct):
    id: UUID
    level: PolicyLevel
    rule: str
    title: str
    summary: str
    pdm: str
    # The proposer: an institution, or a council (unit_kind, unit).
    institution_id: UUID | None
    unit_kind: UnitKind | None
    unit: str | None
    # The council that decides (its kind, code and record id).
    approver_kind: UnitKind
    approver: str
    approver_id: UUID
    status: PolicyStatus
    proposed_by: str
    decided_by: str | None
    # The deciding council's remarks on its last decision.
    remarks: str | None
    supersedes: UUID | None
    superseded_by: UUID | None
    version: int
    proposed_at: datetime
    updated_at: datetime


_COLUMNS = ", ".join(PolicyView.__struct_fields__)
_LIST = Query(
    PolicyView,
    f"""SELECT {_COLUMNS} FROM {TABLE}
        WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR level = $2)
          AND ($3::uuid IS NULL OR institution_id = $3)
          AND ($4::text IS NULL OR approver = $4)
        ORDER BY proposed_at DESC, id LIMIT $5 OFFSET $6""",
)
_INBOX = Query(
    PolicyView,
    f"""SELECT {_COLUMNS} FROM {TABLE}
        WHERE status = 'proposed' AND approver_id = $1
        ORDER BY proposed_at, id LIMIT $2 OFFSET $3""",
)
_ONE = Query(PolicyView, f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = $1")


async def list_policies(
    conn: DbConnection,
    *,
    status: PolicyStatus | None,
    level: PolicyLevel | None,
    institution_id: UUID | None,
    approver: str | None,
    limit: int,
    offset: int,
) -> list[PolicyView]:
    """Newest first."""
    return await _LIST.all(conn, status, level, institution_id, approver, limit, offset)


async def inbox(conn: DbConnection, *, unit_id: UUID, limit: int, offset: int) -> list[PolicyView]:
    """The policies awaiting the decision of the council `unit_id`, oldest first."""
    return await _INBOX.all(conn, unit_id, limit, offset)


async def get_policy(conn: DbConnection, policy_id: UUID) -> PolicyView | None:
    return await _ONE.one(conn, policy_id)


class PoliciesProjection:
    name = "policies"
    tables = (TABLE,)

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Events this read model does not show."""

    @on.register
    async def _(self, event: Policy.Proposed, conn: DbConnection, envelope: EventEnvelope) -> None:
        await conn.execute(
            f"""INSERT INTO {TABLE} (tenant_id, id, level, rule, title, summary, pdm,
                  institution_id, unit_kind, unit, approver_kind, approver, approver_id,
                  status, proposed_by, supersedes, version, proposed_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                  $16, $17, $18, $18)
                ON CONFLICT (tenant_id, id) DO NOTHING""",
            envelope.tenant,
            envelope.aggregate_id,
            event.level,
            event.rule,
            event.title,
            event.summary,
            event.pdm,
            event.institution,
            event.unit_kind,
            event.unit,
            event.approver_kind,
            event.approver,
            unit_id(event.approver_kind, event.approver),
            PolicyStatus.PROPOSED,
            event.proposed_by,
            event.supersedes,
            envelope.aggregate_version,
            envelope.occurred_at,
        )

    @on.register
    async def _(self, event: Policy.Approved, conn: DbConnection, envelope: EventEnvelope) -> None:
        await _decided(conn, envelope, PolicyStatus.APPROVED, event.decided_by, event.remarks)

    @on.register
    async def _(self, event: Policy.Rejected, conn: DbConnection, envelope: EventEnvelope) -> None:
        await _decided(conn, envelope, PolicyStatus.REJECTED, event.decided_by, event.remarks)

    @on.register
    async def _(
        self, event: Policy.RevisionRequested, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _decided(
            conn, envelope, PolicyStatus.REVISION_REQUESTED, event.decided_by, event.remarks
        )

    @on.register
    async def _(self, event: Policy.Revised, conn: DbConnection, envelope: EventEnvelope) -> None:
        await _update(
            conn,
            envelope,
            rule=event.rule,
            title=event.title,
            summary=event.summary,
            status=PolicyStatus.PROPOSED,
        )

    @on.register
    async def _(
        self, event: Policy.Superseded, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        await _update(conn, envelope, status=PolicyStatus.SUPERSEDED, superseded_by=event.by)


async def _decided(
    conn: DbConnection,
    envelope: EventEnvelope,
    status: PolicyStatus,
    decided_by: str,
    remarks: str,
) -> None:
    await _update(conn, envelope, status=status, decided_by=decided_by, remarks=remarks)


async def _update(conn: DbConnection, envelope: EventEnvelope, **changes: object) -> None:
    """The policy's row after one more event (a replayed one changes nothing)."""
    assignments = "".join(f", {column} = ${i + 5}" for i, column in enumerate(changes))
    await conn.execute(
        f"""UPDATE {TABLE} SET version = $3, updated_at = $4{assignments}
            WHERE tenant_id = $1 AND id = $2 AND version < $3""",
        envelope.tenant,
        envelope.aggregate_id,
        envelope.aggregate_version,
        envelope.occurred_at,
        *changes.values(),
    )
