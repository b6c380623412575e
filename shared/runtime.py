"""The running parts of one service process, wired from settings (the composition root's
product): event-store pool, read-model pool, NATS, relay, projections and consumers."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import asyncpg
import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from shared.audit.chain import install_chain
from shared.audit.checkpoints import Checkpointer
from shared.audit.signing import signing_key
from shared.audit.snapshots import Snapshots
from shared.db.leader import LeaderLock
from shared.db.migrate import migrate_read_side
from shared.db.pool import DbPool, create_pool, labelled
from shared.db.roles import app_database_url, ensure_app_login
from shared.eventstore.access import grant_log_access
from shared.eventstore.catalogue import EventCatalogue
from shared.eventstore.functions import install_log_functions
from shared.eventstore.logs import LogWatcher, TenantLogs
from shared.eventstore.mapper import EnvelopeMapper
from shared.eventstore.stores import EventStorePool, TenantStores
from shared.eventstore.unit_of_work import EventStoreUnitsOfWork
from shared.eventstore.wakeups import AppendNotifier, wake_all
from shared.messaging.consumer import EventConsumer
from shared.messaging.feed import FeedClient
from shared.messaging.streams import Subjects, ensure_stream
from shared.observability import Metrics
from shared.outbox.relay import Relay
from shared.personal.cipher import master_key
from shared.personal.erasure import SubjectErasure, erasure_channel, erasure_heard
from shared.personal.keys import SubjectKeys
from shared.projections.runner import ProjectionRunner
from shared.resilience.stalls import Stall, all_stalls
from shared.resilience.supervisor import Supervisor, pause
from shared.scheduling.report import DeadlineReport
from shared.scheduling.scheduler import Scheduler
from shared.service import ServiceDefinition
from shared.service_layer.messagebus import MessageBus
from shared.service_layer.ports import Clock, SystemClock
from shared.service_layer.process_managers import ProcessManager
from shared.settings import ProcessRole, Settings
from shared.tenancy import province_codes

log = logging.getLogger(__name__)


async def migrate(
    definition: ServiceDefinition, database_url: str, stores: TenantStores, app_url: str
) -> None:
    """Bring the service's schemas up to date, as the owner (`database_url`), and grant the
    services' login (`app_url`, `shared.db.roles`) what it needs. Several processes may start
    at once (worker processes, replicas, the three services): one migrates at a time, so DDL
    never races."""
    guard = await asyncpg.connect(database_url)
    try:
        await guard.execute(
            "SELECT pg_advisory_lock(hashtext($1))", f"mpks-migrate/{definition.name}"
        )
        app_role = await ensure_app_login(guard, app_url)
        applied = await migrate_read_side(guard, definition.name, definition.migrations, app_role)

        def create_event_stores() -> None:
            for tenant in sorted(province_codes()):
                stores.create_tables(tenant)

        await anyio.to_thread.run_sync(create_event_stores)
        await install_chain(guard, definition.name, province_codes())
        await grant_log_access(guard, definition.name, province_codes(), app_role)
        await install_log_functions(guard, definition.name, province_codes(), app_role)
    finally:
        # Closing the session releases the lock.
        await guard.close()
    if applied:
        log.info("migrated", extra={"fields": {"service": definition.name, "applied": applied}})


async def migrate_service(
    definition: ServiceDefinition, database_url: str, settings: Settings
) -> None:
    """Migrate one service (`mpks migrate`, `mpks up`, a service starting)."""
    pool = EventStorePool(
        database_url,
        types_schema=definition.name,
        pool_size=1,
        max_overflow=0,
        lock_timeout=settings.lock_timeout_seconds,
    )
    try:
        stores = TenantStores(definition.name, pool, EventCatalogue(definition.aggregates))
        await migrate(definition, database_url, stores, app_database_url(settings, database_url))
    finally:
        await anyio.to_thread.run_sync(pool.close)


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """`/health/ready`: "ready", "degraded" (serving, but something needs an operator's
    eye) or "not ready" (cannot serve: PostgreSQL unreachable)."""

    status: str
    # The process's role (`mpks serve --role`) and what it runs: "commands" and "reads" (the
    # API), "relay", "projections", "consumer:<name>" (background work).
    role: ProcessRole
    runs: list[str]
    # PostgreSQL always; NATS only where something here uses it (not in an API process).
    checks: dict[str, bool]
    # Background tasks that are restarting or waiting on a dependency, with why.
    tasks: dict[str, str]
    # Followers stopped at an event of one tenant they cannot apply.
    stalls: list[Stall]
    # Deadlines overdue or refused (`shared.scheduling.report`); None: unreadable now.
    deadlines: DeadlineReport | None


@dataclass
class ServiceRuntime:
    definition: ServiceDefinition
    settings: Settings
    # The owner's login: migrations only. Everything else runs on `app_database_url`.
    database_url: str
    nats_url: str
    run_background: bool = True
    # The event catalogues of the services this one reacts to (the composition root knows
    # them; the kernel knows no service): the consumers read those services' events typed.
    sources: Mapping[str, EventCatalogue] = field(default_factory=dict)
    # The time the commands and the scheduler see (tests move it).
    clock: Clock = field(default_factory=SystemClock)
    app_database_url: str = field(init=False)
    metrics: Metrics = field(init=False)
    catalogue: EventCatalogue = field(init=False)
    # The command path's pool (asyncpg, the services' login).
    event_store: DbPool = field(init=False)
    # The library's view of the logs (aggregates at a version, tools and tests): off the
    # command path, its pool opens only when something uses it.
    event_pool: EventStorePool = field(init=False)
    stores: TenantStores = field(init=False)
    # Personal data's keys (`shared.personal`): the command path, the projections and the
    # history open personal values with them; the relay and the feed never do.
    keys: SubjectKeys = field(init=False)
    notifier: AppendNotifier = field(init=False)
    bus: MessageBus = field(init=False)
    logs: TenantLogs = field(init=False)
    # Snapshots of long records, for reading them as of a date (taken by a projection).
    snapshots: Snapshots = field(init=False)
    db: DbPool = field(init=False)
    nc: NATS = field(init=False)
    js: JetStreamContext = field(init=False)
    relay: Relay = field(init=False)
    checkpointer: Checkpointer = field(init=False)
    projections: ProjectionRunner = field(init=False)
    consumers: list[EventConsumer] = field(init=False, default_factory=list)
    # Issues the commands of due deadlines (`shared.scheduling`).
    scheduler: Scheduler = field(init=False)
    runs: list[str] = field(init=False, default_factory=list)
    supervisor: Supervisor = field(init=False)
    # Each leader job's current lock (`_as_leader`): health shows a job waiting for it.
    _leaders: dict[str, LeaderLock] = field(init=False, default_factory=dict)
    _stop: asyncio.Event = field(init=False)
    _watcher: LogWatcher = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.name)
        self.database_url = labelled(self.database_url, f"mpks-{self.name}")
        self.app_database_url = labelled(
            app_database_url(self.settings, self.database_url), f"mpks-{self.name}"
        )
        unknown = sorted(set(self.definition.followed) - set(self.sources))
        if unknown:
            raise ValueError(f"{self.name} reacts to {unknown}: their catalogues are missing")

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def role(self) -> ProcessRole:
        return self.settings.role

    def _process_managers(self, source: str) -> list[ProcessManager]:
        make = self.definition.process_managers.get(source)
        return make(self.bus) if make is not None else []

    async def start(self) -> None:
        self.catalogue = EventCatalogue(self.definition.aggregates)
        # First: a production configuration without a master key refuses to start.
        self.keys = SubjectKeys(self.name, master_key(self.settings))
        await migrate_service(self.definition, self.database_url, self.settings)
        self.event_pool = EventStorePool(
            self.app_database_url,
            types_schema=self.name,
            pool_size=self.settings.eventstore_pool_size,
            max_overflow=self.settings.eventstore_pool_overflow,
            lock_timeout=self.settings.lock_timeout_seconds,
        )
        self.stores = TenantStores(self.name, self.event_pool, self.catalogue)
        self.logs = TenantLogs(self.name, self.catalogue)
        self.snapshots = Snapshots(self.name, self.logs)
        self.db = await create_pool(
            self.app_database_url,
            max_size=self.settings.readmodel_pool_size,
            statement_timeout=self.settings.statement_timeout_seconds,
        )
        self.event_store = await create_pool(
            # Told apart from the other connections in pg_stat_activity (and by `make bench`).
            labelled(self.app_database_url, f"mpks-{self.name}-commands"),
            min_size=self.settings.eventstore_pool_size,
            max_size=self.settings.eventstore_pool_size + self.settings.eventstore_pool_overflow,
            server_settings={
                "lock_timeout": f"{self.settings.lock_timeout_seconds}s",
                # A client that vanished mid-transaction must not hold a table lock for long.
                "idle_in_transaction_session_timeout": "30s",
            },
            keep_session=True,
            statement_timeout=self.settings.statement_timeout_seconds,
        )
        self._watcher = LogWatcher(self.app_database_url, self.logs.channel)
        self._watcher.also_listen(
            erasure_channel(self.name), erasure_heard(self.keys), self.keys.forget_live
        )
        # Every role listens: an API process hears of erasures too.
        await self._watcher.start()
        self.notifier = AppendNotifier(self.event_store, self.logs.channel)
        self.notifier.start()
        self.bus = MessageBus(
            self.definition.command_handlers(),
            EventStoreUnitsOfWork(
                self.event_store,
                self.name,
                EnvelopeMapper(self.catalogue, self.keys),
                # This process's readers at once; the others' by a NOTIFY after the commit.
                wake_all(self._watcher.wake, self.notifier.notify),
            ),
            clock=self.clock,
            ports={
                **self.definition.ports(self.db),
                "subject_keys": lambda tenant: SubjectErasure(self.db, self.keys, tenant),
            },
        )
        # Built in every role: an API process reads the projections' names (read-your-writes).
        self.projections = ProjectionRunner(
            schema=self.name,
            pool=self.db,
            logs=self.logs,
            projections=[
                *self.definition.read_models(self.snapshots),
                *self._process_managers(self.name),
            ],
            keys=self.keys,
        )
        self.scheduler = Scheduler(
            schema=self.name,
            pool=self.db,
            bus=self.bus,
            clock=self.clock,
            poll_seconds=self.settings.scheduler_poll_seconds,
        )
        self._stop = asyncio.Event()
        self.supervisor = Supervisor(
            self._stop, on_restart=lambda task: self.metrics.restarts.labels(task).inc()
        )
        self.runs = ["commands", "reads"] if self.role.serves_api else []
        if self.role.runs_background:
            await self._start_followers()

    async def _start_followers(self) -> None:
        """NATS, the relay and the consumers; with `run_background`, the tasks that run
        them and the projections."""
        self.nc = await nats.connect(
            self.nats_url, name=f"mpks-{self.name}", max_reconnect_attempts=-1
        )
        self.js = self.nc.jetstream()
        subjects = Subjects(self.settings.nats_prefix)
        await ensure_stream(self.js, subjects, self.name)
        for source in self.definition.followed:
            await ensure_stream(self.js, subjects, source)
        self.relay = Relay(
            schema=self.name, pool=self.db, logs=self.logs, js=self.js, subjects=subjects
        )
        # Refused (the process does not start) with a production JWT key and no signing key.
        self.checkpointer = Checkpointer(
            service=self.name,
            pool=self.db,
            logs=self.logs,
            js=self.js,
            prefix=self.settings.nats_prefix,
            key=signing_key(self.settings),
            every_events=self.settings.checkpoint_every_events,
            every_seconds=self.settings.checkpoint_every_seconds,
        )
        self.consumers = [
            EventConsumer(
                name=f"{self.name}-from-{source}",
                schema=self.name,
                source=source,
                pool=self.db,
                js=self.js,
                subjects=subjects,
                reactions=[
                    *self.definition.reactions.get(source, list)(),
                    *self._process_managers(source),
                ],
                catalogue=self.sources[source],
                feed=FeedClient(self.settings, source, self.name),
            )
            for source in self.definition.followed
        ]
        if not self.run_background:
            return
        relay_changes = self._watcher.subscribe()
        projection_changes = self._watcher.subscribe()
        self.supervisor.spawn(
            "relay",
            lambda: self._as_leader("relay", lambda: self.relay.run(relay_changes, self._stop)),
        )
        self.supervisor.spawn(
            "projections",
            lambda: self._as_leader(
                "projections", lambda: self.projections.run(projection_changes, self._stop)
            ),
        )
        self.supervisor.spawn(
            "checkpoints",
            lambda: self._as_leader("checkpoints", lambda: self.checkpointer.run(self._stop)),
        )
        self.supervisor.spawn(
            "scheduler",
            lambda: self._as_leader("scheduler", lambda: self.scheduler.run(self._stop)),
        )
        for consumer in self.consumers:
            self.supervisor.spawn(
                f"consumer:{consumer.name}", functools.partial(consumer.run, self._stop)
            )
        self.supervisor.spawn("metrics", self._export_metrics)
        self.runs += [
            "relay",
            "projections",
            "checkpoints",
            "scheduler",
            *(f"consumer:{c.name}" for c in self.consumers),
        ]

    async def _as_leader(self, job: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Replicas and worker processes of a service share its logs: one of them runs the
        relay (the others would only publish duplicates) and one the projections (the
        others would only find the events applied); the rest wait to take over. A leader
        whose lock session ends stops at once and queues up again."""
        while not self._stop.is_set():
            lock = LeaderLock(self.app_database_url, f"mpks-{job}/{self.name}")
            self._leaders[job] = lock
            try:
                if not await lock.acquire(self._stop):
                    return
                running = asyncio.create_task(work())
                lost = asyncio.create_task(lock.lost.wait())
                await asyncio.wait({running, lost}, return_when=asyncio.FIRST_COMPLETED)
                lost.cancel()
                if running.done():
                    running.result()
                    return
                log.warning("lost the %s lock; waiting to lead again", job)
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
            finally:
                await lock.release()

    async def _export_metrics(self) -> None:
        # Deadlines are read once a scheduler poll: "overdue" is counted in polls anyway.
        deadlines_read = float("-inf")
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            for name, lag in self.projections.lag.items():
                self.metrics.projection_lag.labels(name).set(lag)
            self.metrics.relay_lag.set(self.relay.lag)
            for consumer in self.consumers:
                self.metrics.consumer_parked.labels(consumer.name).set(consumer.parked)
                self.metrics.consumer_lag.labels(consumer.name).set(consumer.lag)
            try:
                stalls = await all_stalls(self.db, self.name)
            except Exception:
                log.debug("metrics: stalls unreadable", exc_info=True)
            else:
                self.metrics.stalled.clear()
                for stall in stalls:
                    self.metrics.stalled.labels(stall.follower).inc()
            if loop.time() - deadlines_read >= self.scheduler.poll_seconds:
                try:
                    report = await self.scheduler.report()
                except Exception:
                    log.debug("metrics: deadlines unreadable", exc_info=True)
                else:
                    deadlines_read = loop.time()
                    self.metrics.deadlines_overdue.set(report.overdue)
                    self.metrics.deadlines_refused.set(report.refused)
            await pause(self._stop, 1.0)

    async def ready(self) -> Readiness:
        """Whether this instance can serve (PostgreSQL answers), and what is degraded: NATS
        unreachable, background tasks restarting or waiting, followers stalled, deadlines
        overdue or refused."""
        checks = {"postgres": False}
        if self.role.runs_background:
            checks["nats"] = False
        stalls: list[Stall] = []
        deadlines: DeadlineReport | None = None
        try:
            await asyncio.wait_for(self.db.fetchval("SELECT 1"), 2)
            checks["postgres"] = True
            stalls = await asyncio.wait_for(all_stalls(self.db, self.name), 2)
            deadlines = await asyncio.wait_for(self.scheduler.report(), 2)
        except Exception:
            log.warning("readiness: PostgreSQL unreachable")
        tasks = self.supervisor.problems()
        if self.role.runs_background:
            try:
                if self.nc.is_connected:
                    await asyncio.wait_for(self.js.account_info(), 2)
                    checks["nats"] = True
            except Exception:
                log.warning("readiness: NATS unreachable")
            followers = {
                "relay": self.relay.waiting_on,
                "projections": self.projections.waiting_on,
                "checkpoints": self.checkpointer.waiting_on,
                "scheduler": self.scheduler.waiting_on,
            }
            followers |= {f"consumer:{c.name}": c.waiting_on for c in self.consumers}
            # A job whose lock this instance cannot even ask for (PostgreSQL unreachable)
            # does not run here, whatever its task last said.
            for job, lock in self._leaders.items():
                followers[job] = followers.get(job) or lock.waiting_on
            for task, waiting_on in followers.items():
                if waiting_on:
                    tasks.setdefault(task, f"waiting: {waiting_on}")
        if not checks["postgres"]:
            status = "not ready"
        elif (
            stalls
            or tasks
            or not all(checks.values())
            or (deadlines is not None and deadlines.needs_attention)
        ):
            status = "degraded"
        else:
            status = "ready"
        return Readiness(
            status=status,
            role=self.role,
            runs=list(self.runs),
            checks=checks,
            tasks=tasks,
            stalls=stalls,
            deadlines=deadlines,
        )

    async def stop(self) -> None:
        self._stop.set()
        await self.supervisor.shutdown()
        await self._watcher.stop()
        await self.notifier.stop()
        # Background tasks are stopped and nothing is in flight: close, not drain (drain can
        # wait forever on a pull subscription).
        if self.role.runs_background:
            await self.nc.close()
        await self.db.close()
        await self.event_store.close()
        await anyio.to_thread.run_sync(self.event_pool.close)
