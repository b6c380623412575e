"""Field types commands of every service share, with the limits the API documents."""

from __future__ import annotations

from typing import Annotated

import msgspec

# Why a change was made: recorded with the command's events (`reason_of`).
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]
PdmCode = Annotated[str, msgspec.Meta(pattern=r"^\d{4}$", description="4-digit regency/city code")]

# A reason as the docs page offers it: a decision of the provincial council.
DECISION_EXAMPLE = "Keputusan rapat pleno MPKS PWM Jawa Timur No. 12/KEP/2026"
