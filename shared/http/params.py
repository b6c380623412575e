"""Query parameters every list shares. Integers are bounded to what PostgreSQL's `bigint`
(and asyncpg) accepts, so a huge value is a 422 naming the parameter, not an overflow deep in
a query; a route takes these types instead of a bare `int`."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

# PostgreSQL's bigint ends at 2**63 - 1 and asyncpg raises beyond it rather than clamping. The
# bound is the round 10**18 because OpenAPI renders bounds as JSON numbers (floats): 10**18 is
# exact as a float, 2**63 - 1 is not and would document 2**63 as allowed.
MAX_INTEGER = 10**18

Offset = Annotated[
    int, Parameter(ge=0, le=MAX_INTEGER, description="skip this many records (paging)")
]
Position = Annotated[
    int, Parameter(ge=0, le=MAX_INTEGER, description="return events after this position")
]
