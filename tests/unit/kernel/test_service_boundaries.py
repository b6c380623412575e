"""A service reaches into another service only for its published language: the `domain`
package, whose event classes its readers decode the other's events into. Its application,
API and read models stay its own, so either side can change them alone. Only the
composition root (`services/bootstrap.py`) wires services together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.bootstrap import SERVICES

ROOT = Path(__file__).resolve().parents[3]
PUBLISHED = "domain"
# Modules of the services package that are no service.
_NOT_SERVICES = ("bootstrap", "__init__")


def _absolute(node: ast.ImportFrom, module: str) -> str:
    """`from ..x import y` as the absolute module it names, seen from `module`."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".")[: -node.level]
    return ".".join([*package, *([node.module] if node.module else [])])


def foreign_imports(source: str, module: str) -> list[str]:
    """What `module` (e.g. `services.cases.projections.x`) imports from other services
    beyond their published `domain` package, each as `line N: name`."""
    own = module.split(".")[1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module)
            # `from services.registry import domain` names the package in the alias.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    offending = []
    for line, name in found:
        parts = name.split(".")
        if parts[0] != "services" or len(parts) < 2 or parts[1] in (own, *_NOT_SERVICES):
            continue
        if len(parts) < 3 or parts[2] != PUBLISHED:
            offending.append(f"line {line}: {name}")
    return offending


def _service_modules() -> list[Path]:
    return sorted(path for name in SERVICES for path in (ROOT / "services" / name).rglob("*.py"))


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_there_are_services_and_a_published_language_to_check() -> None:
    assert len(_service_modules()) > 20
    imports_registry_events = "services.registry.domain.institution" in (
        ROOT / "services/cases/projections/institution_directory.py"
    ).read_text("utf-8")
    assert imports_registry_events


@pytest.mark.parametrize(
    "path", _service_modules(), ids=lambda p: str(p.relative_to(ROOT / "services"))
)
def test_a_service_imports_only_the_domain_package_of_another(path: Path) -> None:
    offending = foreign_imports(path.read_text("utf-8"), _module_name(path))
    assert offending == [], f"{path.relative_to(ROOT)} reaches into another service"


def test_reaching_past_the_published_language_is_caught() -> None:
    module = "services.cases.projections.example"
    source = """
from services.registry.domain.institution import Institution
from services.cases.application.receive_complaint import receive_complaint
from services.registry.projections.institutions import TABLE
import services.hr.application.register_worker
from services.registry import api
from ...registry.api import controllers
"""
    assert foreign_imports(source, module) == [
        "line 4: services.registry.projections.institutions.TABLE",
        "line 5: services.hr.application.register_worker",
        "line 6: services.registry.api",
        "line 7: services.registry.api.controllers",
    ]
