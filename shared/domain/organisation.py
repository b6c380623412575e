"""Where in a province's organisation a record sits and how far an actor reaches.

A province (the tenant) holds PDMs (regency/city councils, 4-digit codes starting with the
province's code), and institutions sit in a PDM. A record's scope is the narrowest place it
belongs to; an actor's scope is the place its token lets it act in and read. Tenancy (which
province) is checked at the edge and by row-level security; this is the layer below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.domain.errors import OutOfScope
from shared.domain.messages import Message


@dataclass(frozen=True, slots=True)
class Scope:
    """Neither set: the whole province. `pdm`: one PDM. `institution`: one institution."""

    pdm: str | None = None
    institution: UUID | None = None

    def covers(self, record: Scope) -> bool:
        return (self.pdm is None or self.pdm == record.pdm) and (
            self.institution is None or self.institution == record.institution
        )

    def __str__(self) -> str:
        return self.description

    @property
    def description(self) -> Message:
        if self.institution is not None:
            return Message("institution {institution}", institution=self.institution)
        if self.pdm is not None:
            return Message("PDM {pdm}", pdm=self.pdm)
        return Message("the whole province")


PROVINCE = Scope()


def check_scope(actor: Scope, record: Scope, what: str) -> None:
    """Refuses a command on (or creating) a record outside the actor's reach."""
    if not actor.covers(record):
        raise OutOfScope(
            Message(
                "this token acts only in {scope}: {record} is outside it",
                scope=actor.description,
                record=what,
            )
        )


class PdmMustBeInProvince:
    """A PDM (regency/city council) code is 4 digits and starts with its province's code."""

    field = "pdm"

    def __init__(self, pdm: str, tenant: str) -> None:
        self.pdm = pdm
        self.tenant = tenant

    def is_broken(self) -> bool:
        return not (len(self.pdm) == 4 and self.pdm.isdigit() and self.pdm.startswith(self.tenant))

    @property
    def message(self) -> str:
        return f"PDM {self.pdm!r} is not a regency/city of province {self.tenant}"
