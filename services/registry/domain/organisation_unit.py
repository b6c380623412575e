"""The councils of a province that institutions sit under: PDMs (regency/city councils) and
their branches (PCMs), and the parallel 'Aisyiyah units (PDA, PCA), each with its MPKS
council.

A unit is known by its kind and code. A regency unit's code is the 4-digit regency/city
code (`3578` Kota Surabaya); a branch's is the 6-digit district (kecamatan) code inside it
(`357801` Karang Pilang), so the code alone says which PDM a branch belongs to and a branch
can never sit under a regency of another code. A PDM and the PDA of the same regency share
the code; their kinds tell them apart.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.domain.aggregate import AggregateRoot, event, singledispatchmethod
from shared.domain.errors import OutOfScope
from shared.domain.labels import Label, labels
from shared.domain.messages import Message
from shared.domain.organisation import PROVINCE, PdmMustBeInProvince, Scope, check_scope
from shared.domain.rules import check_rule

# The namespace of units' record ids: `unit_id(kind, code)` is the same id every time.
_UNIT_IDS = uuid5(NAMESPACE_URL, "https://mpks.muhammadiyah.or.id/registry/units")
REGENCY_CODE_LENGTH = 4
BRANCH_CODE_LENGTH = 6


class UnitKind(StrEnum):
    PDM = "pdm"  # Pimpinan Daerah Muhammadiyah: regency/city council
    PCM = "pcm"  # Pimpinan Cabang Muhammadiyah: branch of a PDM
    PDA = "pda"  # Pimpinan Daerah 'Aisyiyah
    PCA = "pca"  # Pimpinan Cabang 'Aisyiyah

    @property
    def is_branch(self) -> bool:
        return self in {UnitKind.PCM, UnitKind.PCA}

    @property
    def parent_kind(self) -> UnitKind | None:
        """The kind of unit a branch sits under; None for a regency unit (the province's)."""
        return {UnitKind.PCM: UnitKind.PDM, UnitKind.PCA: UnitKind.PDA}.get(self)

    @property
    def branch_kind(self) -> UnitKind:
        """The kind of branch a regency unit has (a branch: its own kind)."""
        return {UnitKind.PDM: UnitKind.PCM, UnitKind.PDA: UnitKind.PCA}.get(self, self)

    @property
    def code_length(self) -> int:
        return BRANCH_CODE_LENGTH if self.is_branch else REGENCY_CODE_LENGTH


class UnitStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    MERGED = "merged"


UNIT_KINDS = labels(
    "unit_kind",
    UnitKind,
    {
        UnitKind.PDM: Label(
            "Pimpinan Daerah Muhammadiyah (PDM)", "Muhammadiyah regency council (PDM)"
        ),
        UnitKind.PCM: Label("Pimpinan Cabang Muhammadiyah (PCM)", "Muhammadiyah branch (PCM)"),
        UnitKind.PDA: Label("Pimpinan Daerah 'Aisyiyah (PDA)", "'Aisyiyah regency council (PDA)"),
        UnitKind.PCA: Label("Pimpinan Cabang 'Aisyiyah (PCA)", "'Aisyiyah branch (PCA)"),
    },
)
UNIT_STATUSES = labels(
    "unit_status",
    UnitStatus,
    {
        UnitStatus.OPEN: Label("Aktif", "Open"),
        UnitStatus.CLOSED: Label("Ditutup", "Closed"),
        UnitStatus.MERGED: Label("Digabung", "Merged"),
    },
)


def unit_id(kind: UnitKind, code: str) -> UUID:
    """The record id of the unit `kind` `code`. Codes start with their province's code, so
    the id is unique across tenants too; opening a unit twice is opening the same record."""
    return uuid5(_UNIT_IDS, f"{kind}:{code}")


def regency_of(code: str) -> str:
    """The regency/city (PDM) code a unit code lies in."""
    return code[:REGENCY_CODE_LENGTH]


class UnitCodeMustBeInProvince:
    """A regency unit's code is a regency/city of the province; a branch's is 6 digits
    starting with one (the district code)."""

    field = "code"

    def __init__(self, kind: UnitKind, code: str, tenant: str) -> None:
        self.kind = kind
        self.code = code
        self.tenant = tenant

    def is_broken(self) -> bool:
        return (
            len(self.code) != self.kind.code_length
            or not self.code.isdigit()
            or PdmMustBeInProvince(regency_of(self.code), self.tenant).is_broken()
        )

    @property
    def message(self) -> str:
        if self.kind.is_branch:
            return (
                f"{self.kind.upper()} code {self.code!r} is not a 6-digit district code of a "
                f"regency/city of province {self.tenant}"
            )
        return (
            f"{self.kind.upper()} code {self.code!r} is not a regency/city of province "
            f"{self.tenant}"
        )


class UnitMustBeOpen:
    """A closed or merged unit is kept for reading and history only: nothing changes it and
    nothing new is placed under it. `field` names what the caller gave (the unit acted on,
    a parent, a merge target, an institution's unit)."""

    def __init__(self, field: str, kind: UnitKind, code: str, status: UnitStatus) -> None:
        self.field = field
        self.kind = kind
        self.code = code
        self.status = status

    def is_broken(self) -> bool:
        return self.status is not UnitStatus.OPEN

    @property
    def message(self) -> str:
        return (
            f"{self.kind.upper()} {self.code} is {self.status}: nothing changes or opens under it"
        )


class BranchOpensUnderARecordedUnit:
    """A PCM opens under its PDM (a PCA under its PDA), which must have been opened."""

    field = "code"

    def __init__(self, kind: UnitKind, code: str, parent: OrganisationUnit | None) -> None:
        self.kind = kind
        self.code = code
        self.parent = parent

    def is_broken(self) -> bool:
        return self.kind.is_branch and self.parent is None

    @property
    def message(self) -> str:
        parent_kind = self.kind.parent_kind or self.kind
        return (
            f"{self.kind.upper()} {self.code} opens under {parent_kind.upper()} "
            f"{regency_of(self.code)}, which is not recorded: open it first"
        )


class MustNotMergeIntoItself:
    field = "into"
    message = "a unit cannot merge into itself"

    def __init__(self, code: str, into: str) -> None:
        self.code = code
        self.into = into

    def is_broken(self) -> bool:
        return self.code == self.into


class BranchMergesInsideItsRegency:
    """A branch merges into another branch of the same PDM (or PDA): one of another
    regency would move its institutions out of their PDM."""

    field = "into"

    def __init__(self, kind: UnitKind, code: str, into: str) -> None:
        self.kind = kind
        self.code = code
        self.into = into

    def is_broken(self) -> bool:
        return self.kind.is_branch and regency_of(self.code) != regency_of(self.into)

    @property
    def message(self) -> str:
        parent_kind = self.kind.parent_kind or self.kind
        return (
            f"{self.kind.upper()} {self.code} merges only into a {self.kind.upper()} of "
            f"{parent_kind.upper()} {regency_of(self.code)}, not {self.into}"
        )


def check_unit_authority(actor: Scope, kind: UnitKind, code: str) -> None:
    """Regency units are the province's to open, rename, merge and close: a PDM operator
    governs the branches inside its PDM, not its PDM's own standing. Checked before any
    other rule, so an actor learns nothing of units outside its reach."""
    check_scope(actor, Scope(pdm=regency_of(code)), f"{kind.upper()} {code}")
    if not kind.is_branch and actor != PROVINCE:
        raise OutOfScope(
            Message(
                "this token acts only in {scope}: opening, renaming, merging or closing "
                "{kind} {code} is the province's",
                scope=actor.description,
                kind=kind.upper(),
                code=code,
            )
        )


class OrganisationUnit(AggregateRoot):
    class Opened(AggregateRoot.Created):
        """A council (PDM, PCM, PDA or PCA) entered the registry, open. `parent` is the
        code of the regency unit a branch sits under (None for a regency unit)."""

        kind: UnitKind
        code: str
        name: str
        parent: str | None

    @staticmethod
    def create_id(kind: UnitKind, code: str) -> UUID:
        return unit_id(kind, code)

    @event(Opened)
    def __init__(self, kind: UnitKind, code: str, name: str, parent: str | None) -> None:
        self.kind = kind
        self.code = code
        self.name = name
        self.parent = parent
        self.status = UnitStatus.OPEN
        self.merged_into: str | None = None

    @classmethod
    def open(
        cls, *, tenant: str, kind: UnitKind, code: str, name: str, parent: OrganisationUnit | None
    ) -> OrganisationUnit:
        """`parent`: the regency unit a branch opens under, as recorded (None if it never
        was, or for a regency unit)."""
        check_rule(UnitCodeMustBeInProvince(kind, code, tenant))
        check_rule(BranchOpensUnderARecordedUnit(kind, code, parent))
        if parent is not None:
            check_rule(UnitMustBeOpen("code", parent.kind, parent.code, parent.status))
        return cls(
            kind=kind, code=code, name=name, parent=parent.code if parent is not None else None
        )

    @property
    def scope(self) -> Scope:
        return Scope(pdm=regency_of(self.code))

    def _check_open(self) -> None:
        check_rule(UnitMustBeOpen("status", self.kind, self.code, self.status))

    @singledispatchmethod
    def apply(self, event: AggregateRoot.Event) -> None:
        """Opened: applied by `__init__`."""

    class Renamed(AggregateRoot.Event):
        """The council's name changed."""

        name: str

    def rename(self, name: str) -> None:
        self._check_open()
        if name != self.name:
            self.trigger_event(self.Renamed, name=name)

    @apply.register
    def _(self, event: OrganisationUnit.Renamed) -> None:
        self.name = event.name

    class Merged(AggregateRoot.Event):
        """The council joined another of the same kind (`into`, its code) and ended; the
        reason is in the metadata. It moves no institution itself: a branch's follow it by
        their own `MovedToUnit` events (process_managers/when_unit_merged_move_institutions.py),
        a PDM's stay under it."""

        into: str

    def merge_into(self, target: OrganisationUnit) -> None:
        self._check_open()
        check_rule(MustNotMergeIntoItself(self.code, target.code))
        check_rule(BranchMergesInsideItsRegency(self.kind, self.code, target.code))
        check_rule(UnitMustBeOpen("into", target.kind, target.code, target.status))
        self.trigger_event(self.Merged, into=target.code)

    @apply.register
    def _(self, event: OrganisationUnit.Merged) -> None:
        self.status = UnitStatus.MERGED
        self.merged_into = event.into

    class Closed(AggregateRoot.Event):
        """The council closed (the reason is in the metadata); its record stays."""

    def close(self) -> None:
        self._check_open()
        self.trigger_event(self.Closed)

    @apply.register
    def _(self, event: OrganisationUnit.Closed) -> None:
        self.status = UnitStatus.CLOSED
