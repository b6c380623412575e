"""The languages problem details speak, chosen by `Accept-Language`, and the one catalogue
of what the kernel says in each.

Bahasa Indonesia is the default (the people who use the system) and English the other
(developers, auditors from abroad). The catalogue is keyed by the English template of each
`shared.domain.messages.Message` the kernel raises, gettext-style; a template missing from it
is answered in English. Domain rule messages (a service's `BusinessRule.message`) are not
Messages yet and stay English.
"""

from __future__ import annotations

import re
from enum import StrEnum

from shared.domain.messages import Message


class Language(StrEnum):
    INDONESIAN = "id"
    ENGLISH = "en"


DEFAULT_LANGUAGE = Language.INDONESIAN

# Primary subtags (RFC 5646) meaning each language. `in` is Indonesian's withdrawn ISO 639
# code, which older Java and Android clients still send.
_SUBTAGS = {"id": Language.INDONESIAN, "in": Language.INDONESIAN, "en": Language.ENGLISH}
_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$"
)


def negotiate(accept_language: str | None) -> Language:
    """The language to answer in (RFC 9110 §12.5.4): the acceptable one with the highest
    weight, the earlier on a tie; `*`, an unknown or a malformed header mean the default."""
    best: tuple[float, int, Language] | None = None
    for index, item in enumerate((accept_language or "").split(",")):
        match = _RANGE.match(item)
        if match is None:
            continue
        tag, weight = match.group(1).lower(), match.group(2)
        try:
            quality = 1.0 if weight is None else float(weight)
        except ValueError:
            continue
        if not 0 < quality <= 1:
            continue
        language = DEFAULT_LANGUAGE if tag == "*" else _SUBTAGS.get(tag.split("-")[0])
        if language is None:
            continue
        if best is None or (quality, -index) > (best[0], -best[1]):
            best = (quality, index, language)
    return DEFAULT_LANGUAGE if best is None else best[2]


# Indonesian for every English template the kernel uses (its Messages, and the nouns it names
# records with). Same placeholders on both sides: tests/unit/test_language.py checks.
INDONESIAN: dict[str, str] = {
    # titles (shared.http.problems.TITLES)
    "Malformed request": "Permintaan tidak dapat dibaca",
    "Not authenticated": "Belum terautentikasi",
    "Forbidden": "Akses ditolak",
    "Outside your scope": "Di luar cakupan Anda",
    "Not found": "Tidak ditemukan",
    "Method not allowed": "Metode tidak diizinkan",
    "Conflict": "Konflik",
    "Precondition failed": "Prasyarat tidak terpenuhi",
    "Content too large": "Isi permintaan terlalu besar",
    "Unsupported media type": "Jenis media tidak didukung",
    "Invalid input": "Masukan tidak valid",
    "Refused by a business rule": "Ditolak oleh aturan bisnis",
    "Too many requests": "Terlalu banyak permintaan",
    "Internal error": "Kesalahan internal",
    "Service unavailable": "Layanan tidak tersedia",
    "Read models not caught up yet": "Data baca belum mutakhir",
    "Error": "Kesalahan",
    # authentication and tenancy (shared.http.security)
    "a bearer token is required": "token bearer diperlukan",
    "invalid token: {reason}": "token tidak valid: {reason}",
    "unknown tenant {tenant!r}": "tenant {tenant!r} tidak dikenal",
    "this token is for tenant {own!r}, not {tenant!r}": (
        "token ini untuk tenant {own!r}, bukan {tenant!r}"
    ),
    "this route reads every tenant: national tokens only": (
        "rute ini membaca semua tenant: hanya untuk token nasional"
    ),
    "requires one of the roles: {roles}": "memerlukan salah satu peran: {roles}",
    "this token's roles ({roles}) read and never write": (
        "peran token ini ({roles}) hanya membaca dan tidak pernah menulis"
    ),
    # the access log (shared.http.access, shared.http.kernel_controllers)
    "{value!r} is not a date and time": "{value!r} bukan tanggal dan waktu",
    "{header} must be 1 to {most} characters of text on one line": (
        "{header} harus 1 sampai {most} karakter teks dalam satu baris"
    ),
    "no role this route grants says where this token may act": (
        "tidak ada peran yang diberikan rute ini yang menyatakan di mana token ini boleh bertindak"
    ),
    # scope (shared.domain.organisation)
    "this token acts only in {scope}: {record} is outside it": (
        "token ini hanya berlaku di {scope}: {record} berada di luarnya"
    ),
    "institution {institution}": "lembaga {institution}",
    "PDM {pdm}": "PDM {pdm}",
    "the whole province": "seluruh provinsi",
    # records
    "{record} not found": "{record} tidak ditemukan",
    "institution": "lembaga",
    "complaint": "pengaduan",
    "worker": "pekerja sosial",
    "socialworker": "pekerja sosial",
    "social worker": "pekerja sosial",
    # records as of a date (shared.http.as_of)
    "{field} must be a date and time with its UTC offset (e.g. {example}): a local time "
    "names a different moment in each time zone": (
        "{field} harus berupa tanggal dan waktu dengan selisih UTC-nya (mis. {example}): "
        "waktu lokal menunjuk saat yang berbeda di tiap zona waktu"
    ),
    "{record} did not exist yet at {as_of}: it was created at {created_at}": (
        "{record} belum ada pada {as_of}: dibuat pada {created_at}"
    ),
    # commands (shared.http.commands, shared.eventstore.commands)
    "If-Match must be the version (ETag) of the record": (
        "If-Match harus berisi versi (ETag) dari rekaman"
    ),
    "{header} must be 1 to {most} printable ASCII characters": (
        "{header} harus 1 sampai {most} karakter ASCII yang dapat dicetak"
    ),
    "{header} must be 1 to {most} characters": "{header} harus 1 sampai {most} karakter",
    "this Idempotency-Key was already used for a different request": (
        "Idempotency-Key ini sudah dipakai untuk permintaan lain"
    ),
    "the record was changed by someone else at the same time: reload it and try again": (
        "rekaman diubah orang lain pada saat yang sama: muat ulang lalu coba lagi"
    ),
    "{record} is at version {version}, not {expected}: reload it and try again": (
        "{record} berada di versi {version}, bukan {expected}: muat ulang lalu coba lagi"
    ),
    # reading one's own writes (shared.http.reads)
    "{header} must be a position (the {answer} of a command's answer): a whole number from 0": (
        "{header} harus berupa posisi ({answer} dari jawaban sebuah perintah): "
        "bilangan bulat mulai dari 0"
    ),
    "{header} {position} is beyond the log of tenant {tenant} (its head is {head}): "
    "send the {answer} a command answered": (
        "{header} {position} melampaui log tenant {tenant} (ujungnya {head}): "
        "kirim {answer} yang dijawab sebuah perintah"
    ),
    "beyond the log's head": "melampaui ujung log",
    "the read models of tenant {tenant} have applied the log up to position {reached}, "
    "not yet {position}; retry shortly": (
        "read model tenant {tenant} baru menerapkan log sampai posisi {reached}, "
        "belum {position}; coba lagi sebentar lagi"
    ),
    # the edge (shared.http.edge) and problem details (shared.http.problems)
    "invalid input in: {fields}": "masukan tidak valid pada: {fields}",
    "the body must be application/json (UTF-8), not {media_type!r}": (
        "isi permintaan harus application/json (UTF-8), bukan {media_type!r}"
    ),
    "the body is not valid UTF-8": "isi permintaan bukan UTF-8 yang valid",
    "the JSON body is nested deeper than {depth}": (
        "isi JSON bersarang lebih dalam dari {depth} tingkat"
    ),
    "must not contain the NUL character (U+0000)": "tidak boleh memuat karakter NUL (U+0000)",
    "must not contain unpaired UTF-16 surrogates": (
        "tidak boleh memuat surrogate UTF-16 tanpa pasangan"
    ),
    "name {reason}": "nama {reason}",
    "parameter name is not valid UTF-8": "nama parameter bukan UTF-8 yang valid",
    "is not valid UTF-8": "bukan UTF-8 yang valid",
    "{dependency} is unavailable right now; retry after {seconds} seconds": (
        "{dependency} sedang tidak tersedia; coba lagi setelah {seconds} detik"
    ),
    "an unexpected error occurred; it has been logged": (
        "terjadi kesalahan tak terduga; kesalahan ini sudah dicatat"
    ),
}

_CATALOGUES: dict[Language, dict[str, str]] = {
    Language.INDONESIAN: INDONESIAN,
    Language.ENGLISH: {},
}


def translate(text: str, language: Language) -> str:
    """`text` in `language`: a Message from the catalogue (English where it has no entry);
    any other text as it is."""
    if not isinstance(text, Message):
        return text
    catalogue = _CATALOGUES[language]
    return text.render(lambda template: catalogue.get(template, template))


__all__ = ["DEFAULT_LANGUAGE", "INDONESIAN", "Language", "negotiate", "translate"]
