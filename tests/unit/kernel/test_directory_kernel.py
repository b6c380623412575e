"""The kernel's directory parts in memory: search folding, label catalogues, and the
filters a list turns into SQL."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import msgspec
import pytest

from services.registry.domain.accreditation import Standing
from services.registry.domain.institution import INSTITUTION_TYPES, InstitutionType
from services.registry.domain.licence import LicenceState
from services.registry.projections.institutions import INSTITUTIONS, InstitutionFilters
from shared.domain.labels import Label, labels
from shared.projections.listing import fold, searchable


def test_search_text_ignores_case_accents_and_punctuation() -> None:
    assert fold("Panti Asuhan JOSÉ  Rizal") == "panti asuhan jose rizal"
    assert fold("\u2018Aisyiyah") == fold("'Aisyiyah") == "aisyiyah"
    assert searchable("LKSA Wiyung", None, "Jl. Pemuda No. 5") == "lksa wiyung jl pemuda no 5"


def test_a_catalogue_must_label_every_member_of_its_enum() -> None:
    class Colour(StrEnum):
        RED = "red"
        BLUE = "blue"

    with pytest.raises(ValueError, match="BLUE"):
        labels("colour", Colour, {Colour.RED: Label("Merah", "Red")})
    assert set(INSTITUTION_TYPES.labels) == {t.value for t in InstitutionType}


def test_filters_become_parameters_and_each_search_word_a_condition() -> None:
    args: list[object] = []
    where = INSTITUTIONS._where(
        InstitutionFilters(kind=InstitutionType.LKSA, q="Wiyung  LKSA"), args
    )
    assert where == "kind = $1 AND search LIKE $2 AND search LIKE $3"
    assert args == ["lksa", "%wiyung%", "%lksa%"]
    # Only punctuation: nothing to look for, nothing found (never every row).
    assert INSTITUTIONS._where(InstitutionFilters(q="%_"), []) == "false"
    assert msgspec.structs.asdict(InstitutionFilters()) == dict.fromkeys(
        ["status", "kind", "pdm", "unit", "grade", "q", "licence"]
    )


def test_a_derived_column_is_computed_for_the_day_the_list_is_of() -> None:
    day = date(2026, 3, 31)
    sql, args = INSTITUTIONS._select(
        InstitutionFilters(grade=Standing.B, licence=LicenceState.EXPIRING), None, day
    )
    # The day comes first; the licence's state is one expression, in the columns and the
    # filter alike; a stored column is compared as it is.
    assert args == [day, "B", "expiring"]
    assert "grade = $2" in sql
    assert ") = $3" in sql
    assert "licence_valid_until < $1::date" in sql
    assert ") AS licence" in sql
    with pytest.raises(ValueError, match="licence"):
        INSTITUTIONS._select(InstitutionFilters(), None, None)
