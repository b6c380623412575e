"""The 38 provinces and their codes, shipped as data (never derived from a name)."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta, timezone
from functools import cache
from importlib import resources

import msgspec

# Indonesia keeps no summer time: each province's clock is UTC+7 (WIB), +8 (WITA) or +9 (WIT).
_WITA = frozenset({"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"})
_WIT = frozenset({"81", "82", "91", "92", "93", "94", "95", "96"})

# Tokens of the national council (PP MPKS) carry this instead of a province code.
NATIONAL = "national"


class Province(msgspec.Struct, frozen=True):
    code: str
    name: str


@cache
def load_provinces() -> tuple[Province, ...]:
    text = resources.files("shared.tenancy").joinpath("provinces.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return tuple(Province(code=row["code"], name=row["name"]) for row in rows)


@cache
def province_codes() -> frozenset[str]:
    return frozenset(p.code for p in load_provinces())


def province_timezone(code: str) -> timezone:
    """The province's clock: dates in its documents (valid until, decided on) are its days."""
    hours = 9 if code in _WIT else 8 if code in _WITA else 7
    return timezone(timedelta(hours=hours))


def local_date(code: str, moment: datetime) -> date:
    """The day `moment` falls on in the province."""
    return moment.astimezone(province_timezone(code)).date()
