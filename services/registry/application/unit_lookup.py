"""How the registry's use cases find the councils a command names (not a use case)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from services.registry.domain.institution import Owner
from services.registry.domain.organisation_unit import (
    OrganisationUnit,
    UnitKind,
    UnitMustBeOpen,
    unit_id,
)
from shared.domain.errors import NotFound, RuleBroken
from shared.domain.messages import Message
from shared.domain.rules import check_rule
from shared.service_layer.unit_of_work import UnitOfWork

UnitCode = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{4}(\d{2})?$",
        description="a regency/city code (4 digits: PDM, PDA) or a district code inside "
        "it (6 digits: PCM, PCA)",
    ),
]
BranchCode = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{6}$",
        description="a branch (PCM, or PCA for 'Aisyiyah): the 6-digit district code inside "
        "the PDM's code",
    ),
]


async def consult_unit(uow: UnitOfWork, kind: UnitKind, code: str) -> OrganisationUnit | None:
    """The unit `kind` `code` as recorded (or None), for a rule to consult whatever the
    actor's reach: e.g. the council an institution's staff send a proposal to."""
    return await uow.consult(OrganisationUnit, unit_id(kind, code))


async def find_unit(uow: UnitOfWork, kind: UnitKind, code: str) -> OrganisationUnit | None:
    """The unit `kind` `code` as recorded, or None if it was never opened (a record
    outside the actor's reach is still refused)."""
    try:
        return await uow.get(OrganisationUnit, unit_id(kind, code))
    except NotFound:
        return None


async def check_placement(uow: UnitOfWork, owner: Owner, pdm: str, unit: str | None) -> None:
    """An institution is placed only in councils that are open: its PDM (PDA for
    'Aisyiyah) need not have been recorded as a unit, but if it was it must be open; its
    branch, if named, must be recorded and open. Where the codes lie (the branch inside the
    PDM) the institution's own rules check first. Consulted, not loaded: whether the
    actor reaches the institution is checked on the institution itself, and a consulted unit
    may come from the process's cache (checked again at commit), which spares the
    registration, the busiest command, one of its two round trips."""
    regency = await consult_unit(uow, owner.regency_unit, pdm)
    if regency is not None:
        check_rule(UnitMustBeOpen("pdm", regency.kind, regency.code, regency.status))
    if unit is None:
        return
    branch = await consult_unit(uow, owner.branch_unit, unit)
    if branch is None:
        raise RuleBroken(
            Message("{kind} {code} is not recorded", kind=owner.branch_unit.upper(), code=unit),
            field="unit",
        )
    check_rule(UnitMustBeOpen("unit", branch.kind, branch.code, branch.status))
