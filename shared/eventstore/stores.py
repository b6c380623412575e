"""One event log per tenant: an `eventsourcing` application per (service, tenant) in its own
schema, all of a service's tenants sharing one bounded psycopg pool.

Sharing the pool keeps PostgreSQL connections bounded however many of the 38 provinces are
active (the library would otherwise open one pool per application).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg_pool import PoolTimeout

from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.mapper import EnvelopeMapper
from shared.eventstore.recorder import TenantRecorder
from shared.resilience.faults import CONNECTION_WAIT_SECONDS, Unavailable
from shared.tenancy import province_codes

# See EventStorePool: how long the pool keeps retrying a failed connect before leaving it to
# the next command.
_RECONNECT_GIVE_UP_SECONDS = 0.5


def tenant_schema(service: str, tenant: str) -> str:
    return f"{service}_t{tenant}"


def events_table(service: str) -> str:
    return f"{service}_events"


class PostgresTarget(msgspec.Struct, frozen=True):
    """Connection parameters parsed from a postgresql:// URL (host may be a socket dir)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    application_name: str | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresTarget:
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
        return cls(
            host=unquote(host),
            port=int(query.get("port", [parsed.port or 5432])[0]),
            dbname=unquote(parsed.path.lstrip("/")) or "postgres",
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            application_name=query.get("application_name", [None])[0],
        )


_SET_TENANT = SQL("SELECT set_config('app.tenant_id', %s, false)")


class _FailFast(PostgresDatastore):
    """Fails a request fast when PostgreSQL is down: shared by the pool's datastore and its
    tenant views (which only borrow the pool)."""

    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        try:
            with super().get_connection() as conn:
                yield conn
        except StoreOperationalError as exc:
            # The library retries every operational error 10 times, each waiting the whole
            # pool timeout for a connection: 50 s before a request learnt PostgreSQL is
            # down. A pool that cannot hand out a connection in time is an outage, not a
            # blip a retry would ride out: stop here.
            if isinstance(exc.__cause__, PoolTimeout):
                raise Unavailable("PostgreSQL", str(exc.__cause__)) from exc
            raise


class TenantDatastore(_FailFast):
    """A view of the service's pool on one tenant schema.

    Every connection it hands out first names its tenant (a session-level `app.tenant_id`,
    set again at each checkout, since the pool serves every tenant): the log's row-level
    security (`shared.eventstore.access`) lets the library's reads and appends through for
    this tenant only.

    The composite type the library inserts through lives once, in the service's schema:
    psycopg keeps one adapter per type name on a connection, so per-schema copies of the
    type on shared connections would cast one tenant's rows to another tenant's type.
    """

    types_schema: str
    tenant: str

    @classmethod
    def view(
        cls, base: PostgresDatastore, schema: str, types_schema: str, tenant: str
    ) -> TenantDatastore:
        view = cls.__new__(cls)
        # Same pool and the same (shared) type-adapter caches as the base.
        view.__dict__.update(base.__dict__)
        view.schema = schema
        view.types_schema = types_schema
        view.tenant = tenant
        return view

    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        # Inside the library's context, so its error translation and retries cover this too.
        with super().get_connection() as conn:
            # Autocommit (the library's setting): the session-level value takes effect now
            # and no rollback can undo it.
            conn.execute(_SET_TENANT, (self.tenant,))
            yield conn

    def register_type_adapters(self) -> None:
        missing = [n for n in self.db_type_names if n not in self.psycopg_type_adapters]
        if not missing:
            return
        with self.get_connection() as conn:
            for name in missing:
                info = CompositeInfo.fetch(conn, f"{self.types_schema}.{name}")
                if info is None:
                    continue
                register_composite(info, conn)
                self.psycopg_type_adapters[name] = info
                assert info.python_type is not None
                self.psycopg_python_types[name] = info.python_type


class _ServiceDatastore(_FailFast):
    """The library's datastore without server-side prepared statements.

    When a pipelined append fails (a concurrent write won the version, or an Idempotency-Key
    retry raced), psycopg 3.3 can keep statements it prepared inside the aborted pipeline in
    its cache, and the connection's next command fails with "prepared statement does not
    exist" — a 500 (measured: 81 of 480 contended commands). Parsing these few short
    statements each time costs less than that; it also spares each connection a cache of
    every tenant schema's statements.
    """

    def after_connect_func(self) -> Callable[[Connection[Any]], None]:
        library_setup = super().after_connect_func()

        def after_connect(conn: Connection[Any]) -> None:
            library_setup(conn)
            conn.prepare_threshold = None

        return after_connect


class EventStorePool:
    """The one psycopg pool of a service process; each tenant gets a view on its schema."""

    def __init__(
        self,
        database_url: str,
        *,
        types_schema: str,
        pool_size: int,
        max_overflow: int,
        lock_timeout: int,
    ) -> None:
        self.types_schema = types_schema
        target = PostgresTarget.from_url(database_url)
        self.datastore = _ServiceDatastore(
            dbname=target.dbname,
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            pool_size=pool_size,
            max_overflow=max_overflow,
            lock_timeout=lock_timeout,
            # How long a command waits for a pooled connection before answering 503.
            connect_timeout=CONNECTION_WAIT_SECONDS,
            # A client that vanished mid-transaction must not hold the table lock for long.
            idle_in_transaction_session_timeout=30,
            # No ping per checkout (a round trip per command): the library retries a
            # statement that hits a broken connection.
            pre_ping=False,
        )
        pool = self.datastore.pool
        if isinstance(pool.kwargs, dict):
            if target.application_name:
                pool.kwargs["application_name"] = target.application_name
            # libpq waits for an unanswered connect as long as TCP does (minutes).
            pool.kwargs["connect_timeout"] = max(2, math.ceil(CONNECTION_WAIT_SECONDS))
        # psycopg_pool retries a failed connect with exponential backoff for 5 minutes, so
        # commands kept failing long after PostgreSQL was back (measured: 8-9 s after a short
        # outage, 28 s after a 90 s one). Giving up quickly instead leaves the pool
        # empty, and the next command that asks grows it again at once. (The library's
        # datastore does not pass this setting through.)
        pool.reconnect_timeout = _RECONNECT_GIVE_UP_SECONDS
        self.max_connections = pool_size + max_overflow

    def for_tenant(self, service: str, tenant: str) -> TenantDatastore:
        return TenantDatastore.view(
            self.datastore, tenant_schema(service, tenant), self.types_schema, tenant
        )

    def close(self) -> None:
        self.datastore.close()


class _SharedPoolFactory(PostgresFactory):
    """The library's factory, minus creating (and closing) a pool of its own."""

    def __init__(self, env: Any, datastore: TenantDatastore) -> None:
        InfrastructureFactory.__init__(self, env)  # skips BasePostgresFactory's own pool
        self.datastore = datastore

    def close(self) -> None:
        """The pool belongs to the EventStorePool, which outlives every application."""


class TenantApplication(Application[UUID]):
    recorder: TenantRecorder

    def __init__(
        self,
        *,
        service: str,
        tenant: str,
        datastore: TenantDatastore,
        catalogue: EventCatalogue,
    ) -> None:
        self.service = service
        self.tenant = tenant
        self._datastore = datastore
        self._catalogue = catalogue
        super().__init__(env={"CREATE_TABLE": "no"})

    def construct_factory(self, env: Any) -> InfrastructureFactory[Any]:
        return _SharedPoolFactory(env, self._datastore)

    def construct_mapper(self) -> EnvelopeMapper:
        return EnvelopeMapper(self._catalogue)

    def construct_recorder(self) -> TenantRecorder:
        return TenantRecorder(
            self._datastore,
            events_table_name=events_table(self.service),
            types_schema=self._datastore.types_schema,
            tenant=self.tenant,
        )


class TenantStores:
    """A service's per-tenant applications, created on first use and kept (they are light:
    recorders and a mapper over the shared pool)."""

    def __init__(self, service: str, pool: EventStorePool, catalogue: EventCatalogue) -> None:
        self.service = service
        self.pool = pool
        self.catalogue = catalogue
        self._apps: dict[str, TenantApplication] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> TenantApplication:
        app = self._apps.get(tenant)
        if app is not None:
            return app
        if tenant not in province_codes():
            raise KeyError(f"unknown tenant {tenant!r}")
        with self._lock:
            app = self._apps.get(tenant)
            if app is None:
                app = TenantApplication(
                    service=self.service,
                    tenant=tenant,
                    datastore=self.pool.for_tenant(self.service, tenant),
                    catalogue=self.catalogue,
                )
                self._apps[tenant] = app
        return app

    def create_tables(self, tenant: str) -> None:
        schema = tenant_schema(self.service, tenant)
        with self.pool.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(schema)))
        self.get(tenant).recorder.create_table()
