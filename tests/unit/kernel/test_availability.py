"""Which failures mean "a dependency is down, retry later" (503) rather than a bug (500):
every client reports them its own way, and the HTTP edge must recognise them all."""

from __future__ import annotations

import asyncpg
import psycopg
import pytest
from eventsourcing.persistence import IntegrityError as StoreIntegrityError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg_pool import PoolTimeout

from shared.resilience.faults import Unavailable, unavailable


def _raised_from(cause: Exception, wrapper: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as exc:
            raise wrapper from exc
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        FileNotFoundError(2, "no such socket"),
        TimeoutError(),
        PoolTimeout("couldn't get a connection after 3.00 sec"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients already"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        _raised_from(psycopg.OperationalError("gone"), StoreOperationalError("gone")),
        _raised_from(ConnectionResetError(), RuntimeError("while reading the feed")),
        Unavailable("PostgreSQL", "pool exhausted"),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_connection_failures_are_unavailable(failure: Exception) -> None:
    found = unavailable(failure)
    assert found is not None
    assert found.retry_after > 0


@pytest.mark.parametrize(
    "failure",
    [
        ValueError("a bug"),
        KeyError("tenant"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.UndefinedTable("no such table"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedColumnError("no such column"),
        StoreIntegrityError("stale version"),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_other_failures_are_not(failure: Exception) -> None:
    assert unavailable(failure) is None
