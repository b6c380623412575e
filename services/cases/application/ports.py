"""What cases' handlers look up on the read side."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from services.cases.domain.complaint import KnownInstitution


class InstitutionDirectory(Protocol):
    async def known(self, institution_id: UUID) -> KnownInstitution | None:
        """What cases knows of the institution, in the whole province (None: never heard
        of): an institution outside the actor's scope is refused as such, not as unknown."""
