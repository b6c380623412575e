"""When a branch (PCM or PCA) merges into another, its institutions move to the branch it
merged into: one `MoveInstitution` per institution, with the merge's reason.

Which institutions: those the directory shows under the merged branch, or under a branch
merged into it earlier whose institutions had not moved yet, closed ones left alone (a
closed institution changes no more). Where to: the branch the merge names, or, should that
one have merged on in turn, the open branch the chain of merges ends at; a chain ending at
a closed branch moves nothing (a closed branch keeps its institutions too).

An institution registered or moved under a branch at the moment it merged (its placement
was checked before the merge committed) is found by the same rule: its own event comes
after the merge in the log, and it follows the merge then.

A PDM or PDA merging moves nothing: an institution's PDM is its regency/city and the reach
of whoever governs it, which `MoveInstitution` does not change (services/registry/README.md).

Replayed or redelivered, the rule asks again with the same Idempotency-Keys (one per
institution and event) and gets the first replies; an institution that already moved is no
longer under the merged branch. A refusal (the institution closed meanwhile, the target
closed) is logged and the rest go on: retrying would be refused the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import singledispatchmethod
from typing import Protocol
from uuid import UUID

from services.registry.application.move_institution import MoveInstitution
from services.registry.domain.institution import Institution, Owner
from services.registry.domain.organisation_unit import OrganisationUnit, UnitKind
from services.registry.projections.institutions import branch_of_open, open_institutions_under
from services.registry.projections.units import absorbed_into, get_unit, survivor_of
from shared.db.pool import DbConnection
from shared.domain.errors import RuleBroken
from shared.eventstore.envelope import EventEnvelope
from shared.service_layer.messagebus import MessageBus
from shared.service_layer.process_managers import ProcessManager

log = logging.getLogger(__name__)


class Placements(Protocol):
    """What the rule reads of where units and institutions stand."""

    async def unit(self, unit_id: UUID) -> tuple[UnitKind, str] | None:
        """The kind and code of a recorded unit."""

    async def survivor(self, kind: UnitKind, code: str) -> str | None:
        """The open unit `kind` `code` lives on in (itself if open); None if none does."""

    async def institutions_under(self, kind: UnitKind, code: str) -> list[UUID]:
        """The institutions, not closed, under `code` or a unit merged into it."""

    async def branch_of(self, institution_id: UUID) -> tuple[UnitKind, str] | None:
        """The branch an institution that is not closed sits under, if any."""


class ReadModelPlacements:
    """Placements as the registry's read models show them, in the reader's transaction."""

    def __init__(self, conn: DbConnection) -> None:
        self.conn = conn

    async def unit(self, unit_id: UUID) -> tuple[UnitKind, str] | None:
        found = await get_unit(self.conn, unit_id)
        # The view is built from the row as it is: its kind is the column's text.
        return None if found is None else (UnitKind(found.kind), found.code)

    async def survivor(self, kind: UnitKind, code: str) -> str | None:
        return await survivor_of(self.conn, kind, code)

    async def institutions_under(self, kind: UnitKind, code: str) -> list[UUID]:
        branches = await absorbed_into(self.conn, kind, code)
        return await open_institutions_under(self.conn, Owner.of_unit(kind), branches)

    async def branch_of(self, institution_id: UUID) -> tuple[UnitKind, str] | None:
        found = await branch_of_open(self.conn, institution_id)
        return None if found is None else (found[0].branch_unit, found[1])


class WhenUnitMergedMoveInstitutions(ProcessManager):
    name = "when-unit-merged-move-institutions"

    def __init__(
        self,
        bus: MessageBus,
        placements: Callable[[DbConnection], Placements] = ReadModelPlacements,
    ) -> None:
        super().__init__(bus)
        self.placements = placements

    @singledispatchmethod
    async def on(self, event: object, conn: DbConnection, envelope: EventEnvelope) -> None:
        """Other registry events move nothing."""

    @on.register
    async def _(
        self, event: OrganisationUnit.Merged, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        places = self.placements(conn)
        merged = await places.unit(envelope.aggregate_id)
        if merged is None or not merged[0].is_branch:
            return
        kind, code = merged
        # From `into`, not from the merged unit's row: this needs no other reader to have
        # applied the merge itself.
        survivor = await places.survivor(kind, event.into)
        if survivor is None:
            return
        why = envelope.meta.reason or "no reason given"
        reason = f"{kind.upper()} {code} merged into {kind.upper()} {event.into}: {why}"
        for institution_id in await places.institutions_under(kind, code):
            await self._move(institution_id, survivor, reason, envelope)

    @on.register
    async def _(
        self, event: Institution.Registered, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        if event.unit is not None:
            await self._follow(self.placements(conn), envelope)

    @on.register
    async def _(
        self, event: Institution.MovedToUnit, conn: DbConnection, envelope: EventEnvelope
    ) -> None:
        if event.unit is not None:
            await self._follow(self.placements(conn), envelope)

    async def _follow(self, places: Placements, envelope: EventEnvelope) -> None:
        """An institution placed under a branch that merged meanwhile follows it."""
        branch = await places.branch_of(envelope.aggregate_id)
        if branch is None:
            return
        kind, code = branch
        survivor = await places.survivor(kind, code)
        if survivor is None or survivor == code:
            return
        reason = f"{kind.upper()} {code} merged into {kind.upper()} {survivor}"
        await self._move(envelope.aggregate_id, survivor, reason, envelope)

    async def _move(
        self, institution_id: UUID, unit: str, reason: str, cause: EventEnvelope
    ) -> None:
        command = MoveInstitution(institution_id=institution_id, unit=unit, reason=reason[:2000])
        try:
            await self.issue(command, tenant=cause.tenant, cause=cause, about=institution_id)
        except RuleBroken as refused:
            log.warning(
                "%s: institution %s stays where it is (%s): %s",
                self.name,
                institution_id,
                cause.message_id,
                refused.detail,
            )
