from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec

from services.hr.domain.social_worker import SocialWorker
from shared.domain.fields import PdmCode
from shared.service_layer.commands import Command
from shared.service_layer.ports import Clock
from shared.service_layer.unit_of_work import UnitOfWork


class RegisterWorker(Command, frozen=True):
    """Register a social worker."""

    full_name: Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")]
    birth_date: date
    pdm: PdmCode | None = None


async def register_worker(cmd: RegisterWorker, uow: UnitOfWork, clock: Clock) -> SocialWorker:
    worker = SocialWorker.register(
        tenant=uow.tenant,
        full_name=cmd.full_name,
        birth_date=cmd.birth_date,
        pdm=cmd.pdm,
        today=clock.today(uow.tenant),
    )
    uow.add(worker)
    return worker


# An adult, in province 35's PDM 3578 (Kota Surabaya).
RegisterWorker.examples = {
    "A social worker in Kota Surabaya": RegisterWorker(
        full_name="Siti Aminah", birth_date=date(1990, 3, 4), pdm="3578"
    ),
}
