"""A complaint received by the provincial complaint centre (pusat pengaduan)."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from shared.domain.aggregate import AggregateRoot, event
from shared.domain.rules import check_rule


class Channel(StrEnum):
    WALK_IN = "walk_in"
    PHONE = "phone"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    WEB = "web"
    REFERRAL = "referral"


class KnownInstitution:
    """What cases knows of a registry institution (from the registry's events)."""

    def __init__(self, institution_id: UUID, name: str, status: str) -> None:
        self.institution_id = institution_id
        self.name = name
        self.status = status


class ConcernedInstitutionMustBeKnown:
    """A complaint about an institution must name one registered in this province."""

    field = "institution_id"

    def __init__(self, institution_id: UUID | None, known: KnownInstitution | None) -> None:
        self.institution_id = institution_id
        self.known = known

    def is_broken(self) -> bool:
        return self.institution_id is not None and self.known is None

    @property
    def message(self) -> str:
        return f"institution {self.institution_id} is not registered in this province"


class Complaint(AggregateRoot):
    @event("Received")
    def __init__(
        self,
        channel: Channel,
        summary: str,
        concerns_child: bool,
        institution_id: UUID | None,
    ) -> None:
        self.channel = channel
        self.summary = summary
        self.concerns_child = concerns_child
        self.institution_id = institution_id

    @classmethod
    def receive(
        cls,
        *,
        channel: Channel,
        summary: str,
        concerns_child: bool,
        institution_id: UUID | None,
        institution: KnownInstitution | None,
    ) -> Complaint:
        check_rule(ConcernedInstitutionMustBeKnown(institution_id, institution))
        return cls(
            channel=channel,
            summary=summary,
            concerns_child=concerns_child,
            institution_id=institution_id,
        )
