"""Field types of the policy use cases (not a use case)."""

from __future__ import annotations

from typing import Annotated

import msgspec

# The rule above it a policy implements, as users cite it.
RuleCited = Annotated[
    str,
    msgspec.Meta(
        min_length=3, max_length=200, pattern=r"\S", examples=["MPKS rule 268/1.7/A/2023"]
    ),
]
Title = Annotated[str, msgspec.Meta(min_length=3, max_length=300, pattern=r"\S")]
Summary = Annotated[str, msgspec.Meta(min_length=3, max_length=20000, pattern=r"\S")]
Remarks = Annotated[str, msgspec.Meta(min_length=3, max_length=2000, pattern=r"\S")]
