"""A complaint received by the provincial complaint centre (pusat pengaduan)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID, uuid4

from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.errors import RuleBroken
from shared.domain.messages import Message
from shared.domain.organisation import Scope
from shared.domain.rules import check_rule
from shared.personal.fields import Personal


class Channel(StrEnum):
    WALK_IN = "walk_in"
    PHONE = "phone"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    WEB = "web"
    REFERRAL = "referral"


class ComplaintFlag(StrEnum):
    """What happened to what a complaint is about that a case worker must look at; raised
    by the system (process managers), not by people."""

    INSTITUTION_CLOSED = "institution_closed"


class KnownInstitution:
    """What cases knows of a registry institution (from the registry's events)."""

    def __init__(
        self, institution_id: UUID, name: str, status: str, pdm: str | None = None
    ) -> None:
        self.institution_id = institution_id
        self.name = name
        self.status = status
        # None for institutions learned before the directory kept their PDM.
        self.pdm = pdm


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
    class Received(AggregateRoot.Created):
        """A complaint came in to the complaint centre.

        Version 2 added `pdm`, the PDM the complaint belongs to (of the institution it
        names, else of the PDM desk that received it); version 1 complaints belong to the
        province. Version 3 added who complained, when they say: their name and how to
        reach them, personal data of the complainant (`complainant_subject`, an id made at
        receipt), stored sealed and erasable (`shared.personal`). The summary stays plain:
        it is the case itself, which the centre must keep; staff are asked to write it
        without names (the name goes in its own field)."""

        channel: Channel
        summary: str
        concerns_child: bool
        institution_id: UUID | None
        pdm: str | None
        complainant_subject: UUID | None
        complainant_name: Annotated[str | None, Personal(subject="complainant_subject")]
        complainant_contact: Annotated[str | None, Personal(subject="complainant_subject")]
        class_version = 3

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["pdm"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["complainant_subject"] = None
            state["complainant_name"] = None
            state["complainant_contact"] = None

    @event(Received)
    def __init__(
        self,
        channel: Channel,
        summary: str,
        concerns_child: bool,
        institution_id: UUID | None,
        pdm: str | None,
        complainant_subject: UUID | None,
        complainant_name: str | None,
        complainant_contact: str | None,
    ) -> None:
        self.channel = channel
        self.summary = summary
        self.concerns_child = concerns_child
        self.institution_id = institution_id
        self.pdm = pdm
        self.complainant_subject = complainant_subject
        self.complainant_name = complainant_name
        self.complainant_contact = complainant_contact
        self.flags: tuple[ComplaintFlag, ...] = ()

    @classmethod
    def receive(
        cls,
        *,
        channel: Channel,
        summary: str,
        concerns_child: bool,
        institution_id: UUID | None,
        institution: KnownInstitution | None,
        received_in: Scope,
        complainant_name: str | None = None,
        complainant_contact: str | None = None,
    ) -> Complaint:
        """`received_in` is the receiving actor's scope: a complaint naming no institution
        belongs to the PDM desk that took it. A complainant who gives a name or a contact
        becomes a data subject of their own (anonymous complaints have none)."""
        check_rule(ConcernedInstitutionMustBeKnown(institution_id, institution))
        identified = complainant_name is not None or complainant_contact is not None
        return cls(
            channel=channel,
            summary=summary,
            concerns_child=concerns_child,
            institution_id=institution_id,
            pdm=institution.pdm if institution is not None else received_in.pdm,
            complainant_subject=uuid4() if identified else None,
            complainant_name=complainant_name,
            complainant_contact=complainant_contact,
        )

    @property
    def scope(self) -> Scope:
        return Scope(pdm=self.pdm, institution=self.institution_id)

    @property
    def restricted(self) -> bool:
        """A child's complaint is need-to-know: every read of it is access-logged."""
        return self.concerns_child

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Received: applied by `__init__`."""

    class Flagged(AggregateRoot.Event):
        """Something happened to what the complaint is about that a case worker must look
        at (the reason is in the metadata)."""

        flag: ComplaintFlag

    def raise_flag(self, flag: ComplaintFlag) -> None:
        if flag in self.flags:
            raise RuleBroken(
                Message("the complaint is already flagged {flag}", flag=flag.value), field="flag"
            )
        self.trigger_event(self.Flagged, flag=flag)

    @apply.register
    def _(self, event: Complaint.Flagged) -> None:
        self.flags = (*self.flags, event.flag)
