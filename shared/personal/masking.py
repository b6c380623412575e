"""List views show names masked ("Siti Aminah" → "S*** A***") unless the caller asks for
them unmasked (`?unmask=true`) and holds a role allowed to; an unmasked read is recorded."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from litestar import Request
from litestar.exceptions import PermissionDeniedException

from shared.auth import Role
from shared.domain.messages import Message
from shared.http.access import shows_personal_data
from shared.http.security import principal_of
from shared.personal.fields import ERASED

log = logging.getLogger("mpks.personal")


def mask(value: str | None) -> str | None:
    if value is None or value == ERASED:
        return value
    return " ".join(f"{word[0]}***" for word in value.split())


def check_unmask(
    request: Request[Any, Any, Any], tenant: str, resource: str, allowed: Iterable[Role]
) -> None:
    """Refuses a caller without one of the `allowed` roles; records who read `resource`
    unmasked, in the access log (`shared.http.access`) and in a log line naming who, where
    and what, never the values."""
    principal = principal_of(request)
    roles = frozenset(allowed)
    if not principal.roles & roles:
        raise PermissionDeniedException(
            detail=Message(
                "showing names unmasked requires one of the roles: {roles}",
                roles=", ".join(sorted(roles)),
            )
        )
    shows_personal_data()
    log.info(
        "personal data read unmasked",
        extra={"fields": {"actor": principal.sub, "tenant": tenant, "resource": resource}},
    )
