"""Errors the domain raises; the HTTP edge maps each kind to one status code."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a command may legitimately end with."""

    def __init__(self, detail: str, *, field: str | None = None, source: str = "body") -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # Where the field is: "body", or "header" for If-Match and Idempotency-Key.
        self.source = source


class RuleBroken(DomainError):
    """A business rule rejects the command (the input is well-formed but not allowed)."""


class InvalidInput(DomainError):
    """Input no schema checks is malformed (the format of a header such as If-Match)."""


class NotFound(DomainError):
    """The command or query names a record that does not exist in this tenant."""


class Conflict(DomainError):
    """The record changed since the client read it; retrying blindly would lose an update."""


class OutOfScope(DomainError):
    """The record lies outside the PDM or institution the actor's token is limited to."""
