"""Which failures are an outage of a dependency and which are the work's own fault.

An outage (PostgreSQL down, restarting or out of connections; NATS unreachable; another
service's events feed unreachable) says nothing about the request or the event: an HTTP
client gets a 503 with Retry-After instead of a 500 after a long hang, and background work
waits and retries without limit. Anything else is the work's own fault: an event a follower
cannot apply stalls that (follower, tenant) (shared/resilience/stalls.py).

Both database clients (psycopg under the event store, asyncpg under the read models) and the
socket layer report such failures in their own ways; `unavailable` recognises them all, so
every caller decides in one place.
"""

from __future__ import annotations

import asyncpg
import httpx
import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from nats.errors import Error as NatsError

# How long a request waits for a database connection before it is told to come back later:
# long enough for a busy pool to hand one over, short enough that an outage answers fast.
CONNECTION_WAIT_SECONDS = 3.0
# What a 503 asks clients to wait: a returning PostgreSQL is usable again within a second.
RETRY_AFTER_SECONDS = 2

# SQLSTATE classes that mean "the server cannot serve now", whatever the statement:
# 08 connection exception, 53 insufficient resources (too many connections, disk full),
# 57 operator intervention (shutdown, starting up, statement timeout), 55P03 lock timeout.
_UNAVAILABLE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_STATES = frozenset({"55P03"})


class Unavailable(Exception):
    """A dependency cannot serve now; retrying after `retry_after` seconds may succeed."""

    def __init__(
        self, dependency: str, detail: str, *, retry_after: int = RETRY_AFTER_SECONDS
    ) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail
        self.retry_after = retry_after


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(
        exc,
        # OSError covers refused and reset connections, a missing Unix socket and
        # TimeoutError (acquiring a connection took longer than CONNECTION_WAIT_SECONDS).
        OSError
        # psycopg: lost or refused connections and PoolTimeout; the eventsourcing library
        # re-raises them as its own classes.
        | psycopg.OperationalError
        | psycopg.InterfaceError
        | StoreOperationalError
        | StoreInterfaceError
        # asyncpg: a connection closed under a query, or the pool closing during shutdown.
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.PostgresConnectionError,
    ):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and (
        state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
    )


def unavailable(exc: BaseException) -> Unavailable | None:
    """The failure as an `Unavailable`, when it (or what caused it) is one; else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, Unavailable):
            return current
        if _is_connection_failure(current):
            return Unavailable("PostgreSQL", f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return None


class SourceUnavailable(Exception):
    """The source service's events feed could not be read (down, unreachable, refusing)."""


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says a dependency is unavailable, so the same work should simply be
    retried later; False when the work itself failed."""
    if isinstance(exc, SourceUnavailable | httpx.TransportError | NatsError):
        return True
    return unavailable(exc) is not None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
