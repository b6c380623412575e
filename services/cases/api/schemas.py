"""Request and response bodies of the cases API."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

import msgspec

from services.cases.domain.complaint import Channel


class ReceiveComplaint(msgspec.Struct, forbid_unknown_fields=True):
    examples: ClassVar[dict[str, ReceiveComplaint]]

    channel: Channel
    summary: Annotated[str, msgspec.Meta(min_length=5, max_length=5000)]
    concerns_child: bool = False
    institution_id: UUID | None = None


# What the docs page offers to send (`shared.http.openapi`). Naming an institution needs one
# registered in the province, so the example names none.
ReceiveComplaint.examples = {
    "A call about children": ReceiveComplaint(
        channel=Channel.PHONE,
        summary=(
            "Penelepon melaporkan tiga anak asuh di sebuah panti di Surabaya tidak bersekolah "
            "sejak Agustus."
        ),
        concerns_child=True,
    ),
}
