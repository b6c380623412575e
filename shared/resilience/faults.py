"""Which failures are an outage of a dependency (wait and retry; never the event's fault)
and which are the event's own (it cannot be applied as it is: stall it, visibly)."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from nats.errors import Error as NatsError


class SourceUnavailable(Exception):
    """The source service's events feed could not be read (down, unreachable, refusing)."""


# SQLSTATE classes that say "the server or the connection", not "this statement's data":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown,
# cannot connect now), 58 system error.
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says a dependency (PostgreSQL, NATS, another service) is unavailable,
    so the same work should simply be retried later; False when the work itself failed."""
    if isinstance(
        exc,
        SourceUnavailable
        | OSError
        | TimeoutError
        | asyncio.TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError
        | httpx.TransportError
        | NatsError,
    ):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate.startswith(_OUTAGE_SQLSTATE_CLASSES)
    return False


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
