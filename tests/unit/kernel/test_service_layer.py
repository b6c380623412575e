"""The handler registry and the declared command routes: every command a service exposes
runs through exactly one handler, found when the service is composed."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from litestar.handlers import HTTPRouteHandler

from services.bootstrap import SERVICES
from shared.service_layer.handlers import HandlerRegistry
from shared.service_layer.messagebus import MessageBus
from tests.unit.fakes import FakeUnitsOfWork, FixedClock, MemoryStore


def test_every_exposed_command_of_every_service_has_its_handler() -> None:
    for name, declared in SERVICES.items():
        definition = declared.define()
        registry = definition.handlers()
        exposed = [
            route.opt["command"]
            for controller in definition.controllers
            for route in vars(controller).values()
            if isinstance(route, HTTPRouteHandler) and "command" in route.opt
        ]
        assert exposed, f"{name} exposes no command"
        for command in exposed:
            assert command in registry, f"{name}: {command.__name__} has no handler"
        for command in registry.commands:
            assert command.__doc__, f"{command.__name__} needs a docstring (its API summary)"


@pytest.fixture
def use_cases(tmp_path: Path) -> Iterator[Path]:
    package = tmp_path / "toy_use_cases"
    package.mkdir()
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    yield package
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m.startswith("toy_use_cases")]:
        del sys.modules[module]


HEADER = """
from __future__ import annotations
from shared.service_layer.commands import Command
from shared.service_layer.unit_of_work import UnitOfWork
"""


def test_discovery_finds_one_handler_per_command(use_cases: Path) -> None:
    (use_cases / "write_note.py").write_text(
        HEADER
        + textwrap.dedent('''
        class WriteNote(Command, frozen=True):
            """Write a note."""
            text: str

        async def write_note(cmd: WriteNote, uow: UnitOfWork, clock: object) -> object:
            return None

        async def _helper(x: int) -> int:
            return x
        ''')
    )
    registry = HandlerRegistry.discover("toy_use_cases")
    [command] = registry.commands
    assert command.__name__ == "WriteNote"
    assert registry[command].needs == ("uow", "clock")


def test_a_command_without_a_handler_is_refused_when_the_service_is_composed(
    use_cases: Path,
) -> None:
    (use_cases / "forgotten.py").write_text(
        HEADER + "\nclass Forgotten(Command, frozen=True):\n    text: str\n"
    )
    with pytest.raises(ValueError, match="Forgotten but no handler"):
        HandlerRegistry.discover("toy_use_cases")


def test_two_handlers_of_one_command_are_refused(use_cases: Path) -> None:
    (use_cases / "twice.py").write_text(
        HEADER
        + textwrap.dedent("""
        class Twice(Command, frozen=True):
            text: str

        async def once(cmd: Twice, uow: UnitOfWork) -> object:
            return None

        async def again(cmd: Twice, uow: UnitOfWork) -> object:
            return None
        """)
    )
    with pytest.raises(ValueError, match="Twice has two handlers"):
        HandlerRegistry.discover("toy_use_cases")


def test_a_bus_whose_handlers_need_a_port_nobody_provides_is_refused() -> None:
    registry = HandlerRegistry.discover("services.cases.application")
    with pytest.raises(ValueError, match="directory"):
        MessageBus(registry, FakeUnitsOfWork(MemoryStore()), clock=FixedClock(date.today()))
