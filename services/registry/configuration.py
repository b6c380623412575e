"""The registry's own configuration, read from the environment once (the kernel's settings
know no service).

`MPKS_ACCREDITATION_VALIDITY_YEARS`: how long an accreditation lasts when the decision gives
no date, per grade, as `A=5,B=3,C=2` (the default: the validity the board reports).
"""

from __future__ import annotations

import os
from functools import cache

from services.registry.domain.accreditation import (
    DEFAULT_VALIDITY,
    AccreditationValidity,
    Grade,
)

VALIDITY_VARIABLE = "MPKS_ACCREDITATION_VALIDITY_YEARS"


def parse_validity(text: str) -> AccreditationValidity:
    """`A=5,B=3,C=2` (grades left out keep their default); refuses anything else, so a
    typo stops the service at start instead of granting wrong dates."""
    years = dict(DEFAULT_VALIDITY.years)
    for part in filter(None, (p.strip() for p in text.split(","))):
        grade, _, value = part.partition("=")
        try:
            parsed = Grade(grade.strip().upper())
            number = int(value)
        except ValueError:
            raise ValueError(f"{VALIDITY_VARIABLE}: {part!r} is not GRADE=YEARS") from None
        if parsed is Grade.NOT_ACCREDITED or not 1 <= number <= 20:
            raise ValueError(f"{VALIDITY_VARIABLE}: {part!r}: grades A, B, C; 1 to 20 years")
        years[parsed] = number
    return AccreditationValidity(years)


@cache
def accreditation_validity() -> AccreditationValidity:
    """Read once per process; the service reads it when it is composed, so a wrong value
    stops it at start."""
    return parse_validity(os.environ.get(VALIDITY_VARIABLE, ""))
