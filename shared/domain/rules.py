"""Business rules as small named objects, checked before an event is triggered."""

from __future__ import annotations

from typing import Protocol

from shared.domain.errors import RuleBroken


class BusinessRule(Protocol):
    @property
    def field(self) -> str | None: ...

    def is_broken(self) -> bool: ...

    @property
    def message(self) -> str: ...


def check_rule(rule: BusinessRule) -> None:
    if rule.is_broken():
        raise RuleBroken(rule.message, field=rule.field)
