from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from services.registry.application.policy_fields import RuleCited, Summary, Title
from services.registry.application.unit_lookup import UnitCode, consult_unit, find_unit
from services.registry.domain.institution import Institution, MustBeOpen
from services.registry.domain.organisation_unit import UnitKind, UnitMustBeOpen
from services.registry.domain.policy import Policy, PolicyLevel, Proposer, decider_of
from shared.domain.aggregate import AggregateRoot
from shared.domain.errors import NotFound, RuleBroken
from shared.domain.messages import Message
from shared.domain.rules import check_rule
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork

A = TypeVar("A", bound=AggregateRoot)


class ProposePolicy(Command, frozen=True):
    """Propose a policy of an institution (`institution_id`) or a council (`unit_kind`
    and `unit`), citing the rule it implements; `supersedes`: the approved policy it is to
    replace."""

    level: PolicyLevel
    rule: RuleCited
    title: Title
    summary: Summary
    institution_id: UUID | None = None
    unit_kind: UnitKind | None = None
    unit: UnitCode | None = None
    supersedes: UUID | None = None


async def propose_policy(cmd: ProposePolicy, uow: UnitOfWork, actor: Actor) -> Policy:
    proposer = await _proposer(uow, cmd)
    council = await consult_unit(uow, *decider_of(proposer, cmd.level))
    older = (
        await _recorded(uow, Policy, cmd.supersedes, "supersedes")
        if cmd.supersedes is not None
        else None
    )
    policy = Policy.propose(
        proposer=proposer,
        level=cmd.level,
        rule=cmd.rule,
        title=cmd.title,
        summary=cmd.summary,
        proposed_by=actor.id,
        council=council,
        supersedes=older,
    )
    uow.add(policy)
    return policy


async def _proposer(uow: UnitOfWork, cmd: ProposePolicy) -> Proposer:
    """The institution or the council proposing (exactly one), as recorded and open."""
    by_unit = cmd.unit_kind is not None or cmd.unit is not None
    if (cmd.institution_id is not None) == by_unit:
        raise RuleBroken(
            Message("name the proposer: an institution_id, or a unit_kind and unit"),
            field="institution_id",
        )
    if cmd.institution_id is not None:
        institution = await _recorded(uow, Institution, cmd.institution_id, "institution_id")
        check_rule(MustBeOpen(institution.status))
        return Proposer.of_institution(institution)
    if cmd.unit_kind is None or cmd.unit is None:
        missing = "unit" if cmd.unit is None else "unit_kind"
        raise RuleBroken(Message("a council is named by unit_kind and unit"), field=missing)
    unit = await find_unit(uow, cmd.unit_kind, cmd.unit)
    if unit is None:
        raise RuleBroken(
            Message("{kind} {code} is not recorded", kind=cmd.unit_kind.upper(), code=cmd.unit),
            field="unit",
        )
    check_rule(UnitMustBeOpen("unit", unit.kind, unit.code, unit.status))
    return Proposer.of_unit(unit)


async def _recorded(uow: UnitOfWork, kind: type[A], record_id: UUID, field: str) -> A:
    """The record a field of the body names: one never recorded is that field's fault (a
    422 naming it), not a route's missing resource (404)."""
    try:
        return await uow.get(kind, record_id)
    except NotFound as missing:
        raise RuleBroken(missing.detail, field=field) from None


ProposePolicy.examples = {
    "A children's home's safeguarding policy": ProposePolicy(
        level=PolicyLevel.INSTITUTION,
        rule="MPKS rule 268/1.7/A/2023",
        title="Kebijakan perlindungan anak LKSA Muhammadiyah Wiyung",
        summary="Prosedur keselamatan anak: kunjungan, pelaporan, dan penanganan pengaduan.",
        institution_id=UUID(int=0),
    ),
    "A city council's policy": ProposePolicy(
        level=PolicyLevel.CITY,
        rule="MPKS rule 268/1.7/A/2023",
        title="Standar layanan AUMSos Kota Surabaya",
        summary="Standar minimum layanan bagi semua AUMSos di Kota Surabaya.",
        unit_kind=UnitKind.PDM,
        unit="3578",
    ),
}
