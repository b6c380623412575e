from __future__ import annotations

from uuid import UUID

from services.registry.application.policy_fields import Remarks
from services.registry.domain.policy import Policy
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class RejectPolicy(Command, frozen=True):
    """Reject a policy awaiting your council's decision (not one you proposed), saying why."""

    policy_id: UUID
    remarks: Remarks


async def reject_policy(cmd: RejectPolicy, uow: UnitOfWork, actor: Actor) -> Policy:
    policy = await uow.get(Policy, cmd.policy_id)
    policy.reject(actor.id, cmd.remarks)
    return policy


RejectPolicy.examples = {
    "It contradicts the rule above it": RejectPolicy(
        policy_id=UUID(int=0), remarks="Bertentangan dengan ketentuan MPKS 268/1.7/A/2023."
    )
}
