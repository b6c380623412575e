"""A policy of an institution or a council: proposed citing the rule above it that it
implements, decided by the council whose level it is, revised on request, and superseded
(never erased) by a newer approved one.

Who decides: the PDM (PDA for 'Aisyiyah) for city-level policies and for institutions'
own; the branch (PCM or PCA) for branch-internal ones. Whoever proposed a policy never
decides on it: the proposal records its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from services.registry.domain.institution import Institution
from services.registry.domain.organisation_unit import (
    OrganisationUnit,
    UnitKind,
    UnitStatus,
    regency_of,
)
from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.labels import Label, labels
from shared.domain.organisation import Scope
from shared.domain.rules import check_rule


class PolicyLevel(StrEnum):
    INSTITUTION = "institution"  # an institution's own policy: its PDM decides
    BRANCH = "branch"  # inside a branch: the PCM (PCA) decides
    CITY = "city"  # across a regency/city: the PDM (PDA) decides


class PolicyStatus(StrEnum):
    PROPOSED = "proposed"  # awaiting its decision (again, once revised)
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


POLICY_LEVELS = labels(
    "policy_level",
    PolicyLevel,
    {
        PolicyLevel.INSTITUTION: Label("Amal usaha", "Institution"),
        PolicyLevel.BRANCH: Label("Cabang", "Branch"),
        PolicyLevel.CITY: Label("Daerah (kabupaten/kota)", "Regency/city"),
    },
)
POLICY_STATUSES = labels(
    "policy_status",
    PolicyStatus,
    {
        PolicyStatus.PROPOSED: Label("Diajukan", "Proposed"),
        PolicyStatus.REVISION_REQUESTED: Label("Perlu revisi", "Revision requested"),
        PolicyStatus.APPROVED: Label("Disetujui", "Approved"),
        PolicyStatus.REJECTED: Label("Ditolak", "Rejected"),
        PolicyStatus.SUPERSEDED: Label("Digantikan", "Superseded"),
    },
)


@dataclass(frozen=True)
class Proposer:
    """An institution or a council, placed in its organisation tree."""

    pdm: str
    # PDM or PDA: the tree it belongs to, and the council deciding city-level policies.
    regency: UnitKind
    # The branch it sits in (a branch council: itself); None directly under the regency.
    branch: str | None
    institution: UUID | None = None
    unit_kind: UnitKind | None = None
    unit: str | None = None

    @classmethod
    def of_institution(cls, institution: Institution) -> Proposer:
        return cls(
            pdm=institution.pdm,
            regency=institution.owner.regency_unit,
            branch=institution.unit,
            institution=institution.id,
        )

    @classmethod
    def of_unit(cls, unit: OrganisationUnit) -> Proposer:
        return cls(
            pdm=regency_of(unit.code),
            regency=unit.kind.parent_kind or unit.kind,
            branch=unit.code if unit.kind.is_branch else None,
            unit_kind=unit.kind,
            unit=unit.code,
        )


class LevelMustFitProposer:
    """Institution-level policies are an institution's; branch-level ones need a branch
    (a branch council, or an institution under one)."""

    field = "level"

    def __init__(self, level: PolicyLevel, proposer: Proposer) -> None:
        self.level = level
        self.proposer = proposer

    def is_broken(self) -> bool:
        if self.level is PolicyLevel.INSTITUTION:
            return self.proposer.institution is None
        if self.level is PolicyLevel.BRANCH:
            return self.proposer.branch is None
        return False

    @property
    def message(self) -> str:
        if self.level is PolicyLevel.INSTITUTION:
            return "an institution-level policy is proposed by an institution"
        return "a branch-level policy is proposed by a branch or an institution under one"


class DecidingCouncilMustBeOpen:
    """A policy goes to a council recorded in the registry and open: its inbox is where
    the decision is taken."""

    field = "level"

    def __init__(self, kind: UnitKind, code: str, council: OrganisationUnit | None) -> None:
        self.kind = kind
        self.code = code
        self.council = council

    def is_broken(self) -> bool:
        return self.council is None or self.council.status is not UnitStatus.OPEN

    @property
    def message(self) -> str:
        state = "not recorded" if self.council is None else str(self.council.status)
        return f"{self.kind.upper()} {self.code}, which decides this policy, is {state}"


def decider_of(proposer: Proposer, level: PolicyLevel) -> tuple[UnitKind, str]:
    """The council deciding a policy of `level` from `proposer`: its kind and code."""
    check_rule(LevelMustFitProposer(level, proposer))
    if level is PolicyLevel.BRANCH and proposer.branch is not None:
        return proposer.regency.branch_kind, proposer.branch
    return proposer.regency, proposer.pdm


class MustHavePolicyStatus:
    field = "status"

    def __init__(self, status: PolicyStatus, required: PolicyStatus, message: str) -> None:
        self.status = status
        self.required = required
        self.message = message

    def is_broken(self) -> bool:
        return self.status is not self.required


class NotOwnProposal:
    """Four eyes: the one who proposed a policy does not decide on it."""

    field = "proposed_by"
    message = "you proposed this policy: someone else decides on it"

    def __init__(self, actor: str, proposed_by: str) -> None:
        self.actor = actor
        self.proposed_by = proposed_by

    def is_broken(self) -> bool:
        return self.actor == self.proposed_by


class SupersedesAnApprovedPolicyOfTheSameCouncil:
    """A policy replaces one in force (approved, not yet superseded) that the same council
    decided at the same level; an institution's own policy replaces only one of that same
    institution (its PDM decides every institution's: the council alone does not tell)."""

    field = "supersedes"

    def __init__(
        self,
        older: Policy,
        *,
        decider: tuple[UnitKind, str],
        level: PolicyLevel,
        institution: UUID | None,
    ) -> None:
        self.older = older
        self.decider = decider
        self.level = level
        self.institution = institution

    @property
    def _another_institutions(self) -> bool:
        return self.level is PolicyLevel.INSTITUTION and self.older.institution != self.institution

    def is_broken(self) -> bool:
        return (
            self.older.status is not PolicyStatus.APPROVED
            or self.older.decider != self.decider
            or self.older.level is not self.level
            or self._another_institutions
        )

    @property
    def message(self) -> str:
        if self.older.status is not PolicyStatus.APPROVED:
            return f"policy {self.older.id} is {self.older.status}, not an approved policy in force"
        if self.older.decider == self.decider and self.older.level is self.level:
            return (
                f"policy {self.older.id} is another institution's: an institution's policy "
                "replaces only its own"
            )
        return (
            f"policy {self.older.id} is a {self.older.level}-level policy of "
            f"{self.older.approver_kind.upper()} {self.older.approver}: a policy replaces one "
            "of its own level and council"
        )


class Policy(AggregateRoot):
    class Proposed(AggregateRoot.Created):
        """A policy was proposed, citing the rule it implements. The proposer is an
        institution or a council (`unit_kind` `unit`); `approver_kind` `approver` is the
        council that decides; `proposed_by` the actor, who may not decide on it."""

        level: PolicyLevel
        rule: str
        title: str
        summary: str
        pdm: str
        institution: UUID | None
        unit_kind: UnitKind | None
        unit: str | None
        approver_kind: UnitKind
        approver: str
        proposed_by: str
        supersedes: UUID | None

    @event(Proposed)
    def __init__(
        self,
        level: PolicyLevel,
        rule: str,
        title: str,
        summary: str,
        pdm: str,
        institution: UUID | None,
        unit_kind: UnitKind | None,
        unit: str | None,
        approver_kind: UnitKind,
        approver: str,
        proposed_by: str,
        supersedes: UUID | None,
    ) -> None:
        self.level = level
        self.rule = rule
        self.title = title
        self.summary = summary
        self.pdm = pdm
        self.institution = institution
        self.unit_kind = unit_kind
        self.unit = unit
        self.approver_kind = approver_kind
        self.approver = approver
        self.proposed_by = proposed_by
        self.supersedes = supersedes
        self.status = PolicyStatus.PROPOSED
        self.superseded_by: UUID | None = None

    @classmethod
    def propose(
        cls,
        *,
        proposer: Proposer,
        level: PolicyLevel,
        rule: str,
        title: str,
        summary: str,
        proposed_by: str,
        council: OrganisationUnit | None,
        supersedes: Policy | None = None,
    ) -> Policy:
        """`council`: the deciding council (`decider_of`) as recorded, or None."""
        approver_kind, approver = decider_of(proposer, level)
        check_rule(DecidingCouncilMustBeOpen(approver_kind, approver, council))
        if supersedes is not None:
            check_rule(
                SupersedesAnApprovedPolicyOfTheSameCouncil(
                    supersedes,
                    decider=(approver_kind, approver),
                    level=level,
                    institution=proposer.institution,
                )
            )
        return cls(
            level=level,
            rule=rule,
            title=title,
            summary=summary,
            pdm=proposer.pdm,
            institution=proposer.institution,
            unit_kind=proposer.unit_kind,
            unit=proposer.unit,
            approver_kind=approver_kind,
            approver=approver,
            proposed_by=proposed_by,
            supersedes=supersedes.id if supersedes is not None else None,
        )

    @property
    def decider(self) -> tuple[UnitKind, str]:
        return self.approver_kind, self.approver

    @property
    def scope(self) -> Scope:
        return Scope(pdm=self.pdm, institution=self.institution)

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Proposed: applied by `__init__`."""

    def _check_decidable(self, actor: str) -> None:
        check_rule(
            MustHavePolicyStatus(
                self.status,
                PolicyStatus.PROPOSED,
                f"the policy is {self.status}: no decision awaits",
            )
        )
        check_rule(NotOwnProposal(actor, self.proposed_by))

    class Approved(AggregateRoot.Event):
        """The deciding council approved the policy: it is in force."""

        remarks: str
        decided_by: str

    def approve(self, actor: str, remarks: str, supersedes: Policy | None) -> None:
        """`supersedes`: the policy this one replaces, as loaded (it is marked superseded)."""
        self._check_decidable(actor)
        if supersedes is not None:
            # Again: since the proposal, the older one may have been superseded by another.
            check_rule(
                SupersedesAnApprovedPolicyOfTheSameCouncil(
                    supersedes,
                    decider=self.decider,
                    level=self.level,
                    institution=self.institution,
                )
            )
        self.trigger_event(self.Approved, remarks=remarks, decided_by=actor)
        if supersedes is not None:
            supersedes.trigger_event(supersedes.Superseded, by=self.id)

    @apply.register
    def _(self, event: Policy.Approved) -> None:
        self.status = PolicyStatus.APPROVED

    class Rejected(AggregateRoot.Event):
        """The deciding council rejected the policy, with its remarks."""

        remarks: str
        decided_by: str

    def reject(self, actor: str, remarks: str) -> None:
        self._check_decidable(actor)
        self.trigger_event(self.Rejected, remarks=remarks, decided_by=actor)

    @apply.register
    def _(self, event: Policy.Rejected) -> None:
        self.status = PolicyStatus.REJECTED

    class RevisionRequested(AggregateRoot.Event):
        """The deciding council sent the policy back to its proposer, with its remarks."""

        remarks: str
        decided_by: str

    def request_revision(self, actor: str, remarks: str) -> None:
        self._check_decidable(actor)
        self.trigger_event(self.RevisionRequested, remarks=remarks, decided_by=actor)

    @apply.register
    def _(self, event: Policy.RevisionRequested) -> None:
        self.status = PolicyStatus.REVISION_REQUESTED

    class Revised(AggregateRoot.Event):
        """The proposer revised the policy as asked: it awaits its decision again."""

        rule: str
        title: str
        summary: str

    def revise(self, rule: str, title: str, summary: str) -> None:
        check_rule(
            MustHavePolicyStatus(
                self.status,
                PolicyStatus.REVISION_REQUESTED,
                f"the policy is {self.status}: it is revised only when a revision is asked for",
            )
        )
        self.trigger_event(self.Revised, rule=rule, title=title, summary=summary)

    @apply.register
    def _(self, event: Policy.Revised) -> None:
        self.rule = event.rule
        self.title = event.title
        self.summary = event.summary
        self.status = PolicyStatus.PROPOSED

    class Superseded(AggregateRoot.Event):
        """A newer approved policy (`by`) replaced this one; it stays in the history."""

        by: UUID

    @apply.register
    def _(self, event: Policy.Superseded) -> None:
        self.status = PolicyStatus.SUPERSEDED
        self.superseded_by = event.by
