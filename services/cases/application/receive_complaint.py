from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec

from services.cases.application.ports import InstitutionDirectory
from services.cases.domain.complaint import Channel, Complaint
from shared.service_layer.commands import Command
from shared.service_layer.ports import Actor
from shared.service_layer.unit_of_work import UnitOfWork


class ReceiveComplaint(Command, frozen=True):
    """Receive a complaint."""

    channel: Channel
    summary: Annotated[str, msgspec.Meta(min_length=5, max_length=5000)]
    concerns_child: bool = False
    institution_id: UUID | None = None
    # Personal data of the complainant, when they give it (stored encrypted, erasable).
    complainant_name: (
        Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")] | None
    ) = None
    complainant_contact: (
        Annotated[str, msgspec.Meta(min_length=3, max_length=200, pattern=r"\S")] | None
    ) = None


async def receive_complaint(
    cmd: ReceiveComplaint, uow: UnitOfWork, actor: Actor, directory: InstitutionDirectory
) -> Complaint:
    known = await directory.known(cmd.institution_id) if cmd.institution_id else None
    complaint = Complaint.receive(
        channel=cmd.channel,
        summary=cmd.summary,
        concerns_child=cmd.concerns_child,
        institution_id=cmd.institution_id,
        institution=known,
        received_in=actor.scope,
        complainant_name=cmd.complainant_name,
        complainant_contact=cmd.complainant_contact,
    )
    uow.add(complaint)
    return complaint


# Naming an institution needs one registered in the province, so the example names none.
ReceiveComplaint.examples = {
    "A call about children": ReceiveComplaint(
        channel=Channel.PHONE,
        summary=(
            "Penelepon melaporkan tiga anak asuh di sebuah panti di Surabaya tidak bersekolah "
            "sejak Agustus."
        ),
        concerns_child=True,
        complainant_name="Budi Santoso",
        complainant_contact="+62 812 0000 0000",
    ),
}
