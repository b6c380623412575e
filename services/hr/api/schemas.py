"""Request and response bodies of the HR API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

import msgspec


class RegisterWorker(msgspec.Struct, forbid_unknown_fields=True):
    examples: ClassVar[dict[str, RegisterWorker]]

    full_name: Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")]
    birth_date: date
    pdm: Annotated[str, msgspec.Meta(pattern=r"^\d{4}$")] | None = None


# What the docs page offers to send (`shared.http.openapi`): an adult, in province 35's
# PDM 3578 (Kota Surabaya).
RegisterWorker.examples = {
    "A social worker in Kota Surabaya": RegisterWorker(
        full_name="Siti Aminah", birth_date=date(1990, 3, 4), pdm="3578"
    ),
}
