"""Field types the licence commands share."""

from __future__ import annotations

from typing import Annotated

import msgspec

LicenceNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
Issuer = Annotated[
    str,
    msgspec.Meta(
        min_length=2,
        max_length=200,
        pattern=r"\S",
        description="who issued it, e.g. Dinas Sosial Provinsi Jawa Timur",
    ),
]
