"""One owner per read model: a read-model table is named by one module only (its
projection module, which also holds the queries reading it), and controllers write no SQL
but call those named queries."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[3] / "services"
_CREATE_TABLE = re.compile(r"CREATE TABLE (\w+\.\w+)")
_DROP_TABLE = re.compile(r"DROP TABLE (?:IF EXISTS )?(\w+\.\w+)")
_SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b")


def _read_model_tables() -> list[str]:
    """The tables the migrations create and none drops afterwards."""
    migrations = [m.read_text("utf-8") for m in SERVICES.glob("*/migrations/*.sql")]
    created = {table for text in migrations for table in _CREATE_TABLE.findall(text)}
    dropped = {table for text in migrations for table in _DROP_TABLE.findall(text)}
    return sorted(created - dropped)


def _strings(module: Path) -> list[str]:
    tree = ast.parse(module.read_text("utf-8"), str(module))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_there_are_read_models_to_check() -> None:
    assert len(_read_model_tables()) >= 4


@pytest.mark.parametrize("table", _read_model_tables())
def test_each_read_model_table_is_named_by_one_module(table: str) -> None:
    naming = sorted(
        str(module.relative_to(SERVICES))
        for module in SERVICES.rglob("*.py")
        if any(table in text for text in _strings(module))
    )
    assert len(naming) == 1, f"{table} is named in {naming}"
    assert "/projections/" in naming[0], naming


@pytest.mark.parametrize(
    "module",
    sorted(SERVICES.glob("*/api/*.py")),
    ids=lambda p: str(p.relative_to(SERVICES)),
)
def test_controllers_write_no_sql(module: Path) -> None:
    sql = [text for text in _strings(module) if _SQL.search(text)]
    assert sql == [], f"{module.relative_to(SERVICES)} queries a table itself: {sql}"
