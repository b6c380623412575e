"""The 38 provinces and their codes, shipped as data (never derived from a name)."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import msgspec

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
