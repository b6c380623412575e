from __future__ import annotations

from uuid import UUID

from services.registry.application.policy_fields import Remarks
from services.registry.domain.policy import Policy
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class RequestPolicyRevision(Command, frozen=True):
    """Send a policy awaiting your council's decision back to its proposer, saying what to
    change (not one you proposed)."""

    policy_id: UUID
    remarks: Remarks


async def request_policy_revision(
    cmd: RequestPolicyRevision, uow: UnitOfWork, actor: Actor
) -> Policy:
    policy = await uow.get(Policy, cmd.policy_id)
    policy.request_revision(actor.id, cmd.remarks)
    return policy


RequestPolicyRevision.examples = {
    "What to change": RequestPolicyRevision(
        policy_id=UUID(int=0), remarks="Lengkapi prosedur pelaporan pengaduan anak."
    )
}
