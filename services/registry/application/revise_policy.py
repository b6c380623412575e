from __future__ import annotations

from uuid import UUID

from services.registry.application.policy_fields import RuleCited, Summary, Title
from services.registry.domain.policy import Policy
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork


class RevisePolicy(Command, frozen=True):
    """Revise a policy its council sent back: it awaits the decision again."""

    policy_id: UUID
    rule: RuleCited
    title: Title
    summary: Summary


async def revise_policy(cmd: RevisePolicy, uow: UnitOfWork) -> Policy:
    policy = await uow.get(Policy, cmd.policy_id)
    policy.revise(cmd.rule, cmd.title, cmd.summary)
    return policy


RevisePolicy.examples = {
    "As asked": RevisePolicy(
        policy_id=UUID(int=0),
        rule="MPKS rule 268/1.7/A/2023",
        title="Kebijakan perlindungan anak LKSA Muhammadiyah Wiyung (revisi)",
        summary="Prosedur keselamatan anak, dengan prosedur pelaporan pengaduan anak.",
    )
}
