"""The kernel (`shared/`) knows no service: it imports none and names none, so a service is
added, renamed or removed in its own folder and the composition root only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.bootstrap import SERVICES
from shared.settings import Settings

KERNEL = Path(__file__).resolve().parents[3] / "shared"
# Packages outside the kernel that it must never reach into.
OUTSIDE = ("services", "mpks", "bench", "tests")


def _modules() -> list[Path]:
    return sorted(KERNEL.rglob("*.py"))


# What imports a module by its name at run time: importlib, resources, uvicorn's targets.
_BY_NAME = {"import_module", "__import__", "files", "import_string"}
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0]
            if name in _BY_NAME and isinstance(first, ast.Constant):
                found.append((node.lineno, str(first.value)))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _TARGET.fullmatch(node.value)
        ):
            found.append((node.lineno, node.value.split(":")[0]))
    return found


def test_the_kernel_has_modules_to_check() -> None:
    assert len(_modules()) > 40


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(KERNEL)))
def test_no_kernel_module_imports_a_service_or_the_entry_point(module: Path) -> None:
    tree = ast.parse(module.read_text("utf-8"), str(module))
    offending = [
        f"line {line}: {name}" for line, name in _imported(tree) if name.split(".")[0] in OUTSIDE
    ]
    assert offending == [], f"shared/{module.relative_to(KERNEL)} reaches outside the kernel"


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(KERNEL)))
def test_no_kernel_module_names_a_declared_service(module: Path) -> None:
    """A service's name as a string in the kernel (a URL setting, a special case) would make
    adding or removing a service a kernel change."""
    tree = ast.parse(module.read_text("utf-8"), str(module))
    named = [
        f"line {node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in SERVICES
    ]
    assert named == [], f"shared/{module.relative_to(KERNEL)} names a service"


def test_settings_have_no_field_of_a_declared_service() -> None:
    fields = set(Settings.__struct_fields__)
    assert not {f"{name}_url" for name in SERVICES} & fields
