"""What people call the values of a domain's enums, in Bahasa Indonesia and English.

A service declares one catalogue per enum, next to the enum:

    INSTITUTION_TYPES = labels("institution_type", InstitutionType, {
        InstitutionType.LKSA: Label("Lembaga Kesejahteraan Sosial Anak (LKSA)",
                                    "Children's home (LKSA)"),
        ...
    })

and lists its catalogues in its `ServiceDefinition.labels`: the kernel serves them at
`GET /v1/labels` (web clients show labels, the API keeps the stable codes) and downloads
write a value's label in the reader's language (`catalogue_of`). A catalogue must name every
member of its enum: a new member without its labels fails at import, not on a screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType


@dataclass(frozen=True)
class Label:
    """One value's label: `id` in Bahasa Indonesia, `en` in English."""

    id: str
    en: str

    def in_language(self, language: str) -> str:
        """The label in `language` (`id` or `en`, as `shared.http.language.Language`)."""
        return self.en if language == "en" else self.id


@dataclass(frozen=True)
class LabelCatalogue:
    """The labels of one enum, by its values (the codes the API and events carry)."""

    name: str
    enum: type[Enum]
    labels: Mapping[str, Label]


_BY_ENUM: dict[type[Enum], LabelCatalogue] = {}


def labels(name: str, enum: type[Enum], entries: Mapping[Enum, Label]) -> LabelCatalogue:
    """Declares `enum`'s catalogue, `name` as clients look it up; every member labelled."""
    missing = [m.name for m in enum if m not in entries]
    if missing:
        raise ValueError(f"labels {name!r}: no label for {enum.__name__}.{', '.join(missing)}")
    catalogue = LabelCatalogue(
        name, enum, MappingProxyType({str(m.value): entries[m] for m in enum})
    )
    _BY_ENUM[enum] = catalogue
    return catalogue


def catalogue_of(enum: type[Enum]) -> LabelCatalogue | None:
    """`enum`'s catalogue, if its service declared one."""
    return _BY_ENUM.get(enum)
