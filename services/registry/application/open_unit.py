from __future__ import annotations

from services.registry.application.fields import Name
from services.registry.application.unit_lookup import UnitCode, find_unit
from services.registry.domain.organisation_unit import (
    OrganisationUnit,
    UnitKind,
    check_unit_authority,
    regency_of,
)
from shared.domain.errors import Conflict
from shared.domain.messages import Message
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class OpenUnit(Command, frozen=True):
    """Open a council: a PDM or PDA (4-digit regency/city code) or a branch, PCM or PCA
    (6-digit district code inside its PDM's or PDA's code, which must be open)."""

    kind: UnitKind
    code: UnitCode
    name: Name


async def open_unit(cmd: OpenUnit, uow: UnitOfWork, actor: Actor) -> OrganisationUnit:
    check_unit_authority(actor.scope, cmd.kind, cmd.code)
    if await find_unit(uow, cmd.kind, cmd.code) is not None:
        raise Conflict(
            Message("{kind} {code} is already recorded", kind=cmd.kind.upper(), code=cmd.code),
            field="code",
        )
    parent_kind = cmd.kind.parent_kind
    parent = (
        await find_unit(uow, parent_kind, regency_of(cmd.code)) if parent_kind is not None else None
    )
    unit = OrganisationUnit.open(
        tenant=uow.tenant, kind=cmd.kind, code=cmd.code, name=cmd.name, parent=parent
    )
    uow.add(unit)
    return unit


# Valid as they stand in province 35, Jawa Timur (3579 is Kota Batu, 357901 its district
# Batu): not Surabaya (3578), which the demo data opens and other examples name.
OpenUnit.examples = {
    "A city council": OpenUnit(kind=UnitKind.PDM, code="3579", name="PDM Kota Batu"),
    "A branch of it": OpenUnit(kind=UnitKind.PCM, code="357901", name="PCM Batu"),
}
