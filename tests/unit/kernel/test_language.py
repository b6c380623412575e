"""Choosing the language of problem details, and the catalogue they are translated from."""

from __future__ import annotations

from string import Formatter
from uuid import UUID

import pytest

from shared.domain.messages import Message, record_name
from shared.domain.organisation import Scope
from shared.http.language import INDONESIAN, Language, negotiate, translate
from shared.http.problems import TITLES, ProblemCode


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Language.INDONESIAN),
        ("", Language.INDONESIAN),
        ("en", Language.ENGLISH),
        ("en-US", Language.ENGLISH),
        ("EN-gb", Language.ENGLISH),
        ("id", Language.INDONESIAN),
        ("id-ID", Language.INDONESIAN),
        # Indonesian's withdrawn ISO code, still sent by older Java and Android clients.
        ("in-ID", Language.INDONESIAN),
        ("en;q=0.9, id;q=0.8", Language.ENGLISH),
        ("id;q=0.8, en;q=0.9", Language.ENGLISH),
        ("en;q=0.8, id", Language.INDONESIAN),
        ("fr-FR, en;q=0.5", Language.ENGLISH),
        ("fr, de;q=0.9", Language.INDONESIAN),
        ("*", Language.INDONESIAN),
        ("fr, *;q=0.1", Language.INDONESIAN),
        # q=0 means "not this one".
        ("id;q=0, en;q=0.1", Language.ENGLISH),
        ("en;q=0", Language.INDONESIAN),
        # A tie goes to the one named first.
        ("en, id", Language.ENGLISH),
        ("id, en", Language.INDONESIAN),
        # Malformed entries are skipped, never an error.
        ("en;q=abc, id;q=0.5", Language.INDONESIAN),
        ("en;q=2", Language.INDONESIAN),
        (";;;,,,", Language.INDONESIAN),
        ("en-", Language.INDONESIAN),
    ],
)
def test_accept_language_picks_the_best_supported_language(
    header: str | None, expected: Language
) -> None:
    assert negotiate(header) == expected


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("template", sorted(INDONESIAN))
def test_each_translation_keeps_the_templates_placeholders(template: str) -> None:
    assert _placeholders(INDONESIAN[template]) == _placeholders(template)


def test_every_problem_title_is_translated() -> None:
    assert set(TITLES) == set(ProblemCode)
    missing = [title for title in TITLES.values() if title not in INDONESIAN]
    assert not missing


def test_a_message_is_english_text_and_translates_with_its_values() -> None:
    record = UUID("2f0c6a52-5d43-4a53-9a8e-3f3d4b0e1a11")
    message = Message(
        "this token acts only in {scope}: {record} is outside it",
        scope=Scope(pdm="3578").description,
        record=record_name("institution", record),
    )
    assert message == f"this token acts only in PDM 3578: institution {record} is outside it"
    assert translate(message, Language.ENGLISH) == message
    assert translate(message, Language.INDONESIAN) == (
        f"token ini hanya berlaku di PDM 3578: lembaga {record} berada di luarnya"
    )
    # Plain text (a domain rule's message) is answered as it is.
    assert translate("PDM '3171' is not in 35", Language.INDONESIAN) == "PDM '3171' is not in 35"
    # Whatever reaches the wire is a plain str (msgspec encodes no str subclass).
    assert type(translate(message, Language.INDONESIAN)) is str
    assert type(translate(message, Language.ENGLISH)) is str
