from __future__ import annotations

from uuid import UUID

from services.registry.application.policy_fields import Remarks
from services.registry.domain.policy import Policy
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class ApprovePolicy(Command, frozen=True):
    """Approve a policy awaiting your council's decision (not one you proposed); the policy
    it supersedes, if any, is marked superseded."""

    policy_id: UUID
    remarks: Remarks


async def approve_policy(cmd: ApprovePolicy, uow: UnitOfWork, actor: Actor) -> Policy:
    policy = await uow.get(Policy, cmd.policy_id)
    older = await uow.get(Policy, policy.supersedes) if policy.supersedes is not None else None
    policy.approve(actor.id, cmd.remarks, older)
    return policy


ApprovePolicy.examples = {
    "With remarks": ApprovePolicy(
        policy_id=UUID(int=0), remarks="Sesuai dengan ketentuan MPKS 268/1.7/A/2023."
    )
}
