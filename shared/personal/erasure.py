"""Erasing a data subject: `POST /v1/tenants/{t}/subjects/{subject}/erase` with a reason.

Its key is destroyed first, then `Subject.Erased` is recorded in the tenant's log (the
reason and who in its metadata, in the log every auditor replays). The owning service's
projections blank the subject's fields when they read it; a projection rebuilt later finds
the values `ERASED` anyway. A retry after a failure between the two steps finishes the job
(each step is idempotent); erasing again answers 200 with the first erasure's record.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid5

from litestar import Controller

from shared.auth import Role
from shared.db.pool import DbPool, tenant_transaction
from shared.domain.aggregate import AggregateRoot, event
from shared.domain.errors import NotFound
from shared.domain.fields import Reason
from shared.domain.messages import Message
from shared.http.commands import expose
from shared.http.security import requires_roles, tenant_guard
from shared.personal.keys import Erasure, SubjectKeys
from shared.resilience.faults import CONNECTION_WAIT_SECONDS
from shared.service_layer.commands import Command
from shared.service_layer.handlers import HandlerRegistry, handler_of
from shared.service_layer.unit_of_work import UnitOfWork

# Who may erase: the province's administrator, the controller of its personal data (a
# national token may only read a province, `tenant_guard`).
ERASERS = (Role.WILAYAH_ADMIN,)
_RECORDS = UUID("6b1f6d0e-3c55-4d8e-9a41-5f0c2a7e9d13")


class DataSubject(AggregateRoot):
    """A person whose personal data a service held, as far as erasure goes."""

    class Erased(AggregateRoot.Created):
        """The subject's personal data was erased: its key destroyed, its values read as
        erased from now on (the reason and who are in the metadata)."""

        subject: UUID

    @staticmethod
    def create_id(subject: UUID) -> UUID:
        # One record per subject, so a second erasure finds the first.
        return uuid5(_RECORDS, f"data-subject/{subject}")

    @event(Erased)
    def __init__(self, subject: UUID) -> None:
        self.subject = subject


# What a service with personal data adds to its aggregates.
SUBJECT_AGGREGATE = ("Subject", DataSubject)


def erasure_channel(service: str) -> str:
    """Where a service's processes hear of erasures (payload `<tenant>/<subject>`)."""
    return f"{service}_erasures"


def erasure_heard(keys: SubjectKeys) -> Callable[[str], None]:
    """What a process does with an erasure another process announced."""

    def heard(payload: str) -> None:
        tenant, _, subject = payload.partition("/")
        keys.erased(tenant, subject)

    return heard


class SubjectErasure:
    """The erasure port of one tenant (the handler's `subject_keys`)."""

    def __init__(self, db: DbPool, keys: SubjectKeys, tenant: str) -> None:
        self.db = db
        self.keys = keys
        self.tenant = tenant

    async def erase(self, subject: UUID) -> Erasure:
        async with tenant_transaction(self.db, self.tenant, wait=CONNECTION_WAIT_SECONDS) as conn:
            erasure = await self.keys.erase(conn, self.tenant, str(subject))
            if erasure is not Erasure.UNKNOWN:
                # Delivered with the commit, to every process of the service: their caches
                # would otherwise open the subject's values for up to `cache_seconds`.
                await conn.execute(
                    "SELECT pg_notify($1, $2)",
                    erasure_channel(self.keys.service),
                    f"{self.tenant}/{subject}",
                )
        if erasure is not Erasure.UNKNOWN:
            # After the commit: a projection that loaded the key while the erasure was in
            # flight (its read saw the key still there) must not keep it.
            self.keys.erased(self.tenant, str(subject))
        return erasure


class EraseSubject(Command, frozen=True):
    """Erase a data subject's personal data: its key is destroyed, its records stay with
    those fields erased."""

    subject: UUID
    reason: Reason


async def erase_subject(
    cmd: EraseSubject, uow: UnitOfWork, subject_keys: SubjectErasure
) -> DataSubject:
    if await subject_keys.erase(cmd.subject) is Erasure.UNKNOWN:
        raise NotFound(
            Message("no personal data of {subject} in this province", subject=str(cmd.subject)),
            field="subject",
        )
    try:
        # Erased before: the first erasure's record, nothing recorded twice.
        return await uow.get(DataSubject, DataSubject.create_id(cmd.subject))
    except NotFound:
        subject = DataSubject(subject=cmd.subject)
        uow.add(subject)
        return subject


EraseSubject.examples = {
    "The person asked for erasure": EraseSubject(
        subject=UUID("0b7c8f0e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"),
        reason="Permintaan penghapusan data pribadi oleh subjek data (UU 27/2022 pasal 8)",
    ),
}


def with_erasure(handlers: HandlerRegistry) -> HandlerRegistry:
    """A service's handlers plus erasure (for services with personal data)."""
    handlers.add(handler_of(erase_subject))
    return handlers


class SubjectsController(Controller):
    path = "/v1/tenants/{tenant:str}/subjects"
    guards = [tenant_guard]
    tags = ["personal data"]

    erase = expose(EraseSubject, "/{subject:uuid}/erase", guards=[requires_roles(*ERASERS)])
