"""Field types the registry's commands share."""

from __future__ import annotations

from typing import Annotated

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=r"\S")]
