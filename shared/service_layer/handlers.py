"""The handler registry: which handler runs which command, and what it needs.

A service's use cases are the modules of one package, each holding a command and its handler
(`suspend_institution.py`: `SuspendInstitution` and `suspend_institution`). The registry finds
them when the service is composed, not at import time: a handler is a coroutine function of the
module whose first parameter is annotated with a `Command` subclass. Its other parameters name
what it needs (`uow`, `actor`, `clock` or a port the service provides), and are passed by name.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from shared.domain.aggregate import AggregateRoot
from shared.service_layer.commands import Command

HandlerFunction = Callable[..., Awaitable[AggregateRoot]]


@dataclass(frozen=True)
class Handler:
    command: type[Command]
    function: HandlerFunction
    # What it needs besides the command, by parameter name.
    needs: tuple[str, ...]

    async def __call__(self, command: Command, provided: typing.Mapping[str, Any]) -> AggregateRoot:
        return await self.function(command, **{name: provided[name] for name in self.needs})


class HandlerRegistry:
    def __init__(self, handlers: Iterable[Handler] = ()) -> None:
        self._handlers: dict[type[Command], Handler] = {}
        for handler in handlers:
            self.add(handler)

    def add(self, handler: Handler) -> None:
        if handler.command in self._handlers:
            raise ValueError(f"{handler.command.__name__} has two handlers")
        self._handlers[handler.command] = handler

    def __getitem__(self, command: type[Command]) -> Handler:
        try:
            return self._handlers[command]
        except KeyError:
            raise LookupError(f"no handler for {command.__name__}") from None

    def __contains__(self, command: type[Command]) -> bool:
        return command in self._handlers

    @property
    def commands(self) -> list[type[Command]]:
        return list(self._handlers)

    def needs(self) -> set[str]:
        return {name for handler in self._handlers.values() for name in handler.needs}

    @classmethod
    def discover(cls, package: str) -> HandlerRegistry:
        """Every use case in `package` (one module per use case). A module declaring a
        command without a handler is refused: the command could never run."""
        registry = cls()
        root = importlib.import_module(package)
        for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
            module = importlib.import_module(info.name)
            handlers = list(_handlers_in(module))
            for handler in handlers:
                registry.add(handler)
            for command in _commands_in(module):
                if command not in registry:
                    raise ValueError(f"{info.name} declares {command.__name__} but no handler")
        return registry


def handler_of(function: HandlerFunction) -> Handler:
    command = _command_of(function)
    if command is None:
        raise TypeError(f"{function.__qualname__}: the first parameter must be the command")
    return Handler(command, function, tuple(inspect.signature(function).parameters)[1:])


def _command_of(function: Callable[..., object]) -> type[Command] | None:
    """The command a function handles: the annotation of its first parameter."""
    parameters = list(inspect.signature(function).parameters)
    if not parameters:
        return None
    annotation = typing.get_type_hints(function).get(parameters[0])
    if isinstance(annotation, type) and issubclass(annotation, Command):
        return annotation
    return None


def _handlers_in(module: ModuleType) -> Iterable[Handler]:
    for value in vars(module).values():
        if (
            inspect.iscoroutinefunction(value)
            and value.__module__ == module.__name__
            and _command_of(value) is not None
        ):
            yield handler_of(value)


def _commands_in(module: ModuleType) -> Iterable[type[Command]]:
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Command)
            and value.__module__ == module.__name__
        ):
            yield value
