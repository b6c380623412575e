"""Rebuild equals live: random sequences of the three services' real commands (valid ones and
rule-breaking ones, in several provinces and PDMs, by province-wide and PDM-scoped actors),
with the followers running at random points in between; then every read model is rebuilt
from the events and must hold exactly the rows the live one held.

Live means built as the running system builds it: projections following their own service's
log, and cases' directory of institutions fed by the registry's events over NATS JetStream
(relay → stream → durable consumer), whose process manager flags complaints on the way (its
commands land in cases' log, which the complaints read model follows). The read models are
found, not listed: every table a projection or a reaction declares it owns (`tables`), so a
new read model is covered by being declared.

Each command is also checked on its own: one the rules refuse changes nothing (its
service's log keeps its head), one they accept records the events it should.

This module runs on a database and NATS prefix of its own. Hypothesis' examples share them
and each adds to the logs the earlier ones left (see the test for why they are not emptied);
each example's commands name only records it made, and every read model is compared whole.

`MPKS_HYPOTHESIS_PROFILE=thorough` runs many more examples than the suite does.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from nats.js import JetStreamContext

from services.cases.application.receive_complaint import ReceiveComplaint
from services.hr.application.register_worker import RegisterWorker
from services.registry.application.close_institution import CloseInstitution
from services.registry.application.register_institution import RegisterInstitution
from services.registry.application.reinstate_institution import ReinstateInstitution
from services.registry.application.rename_institution import RenameInstitution
from services.registry.application.suspend_institution import SuspendInstitution
from services.registry.domain.institution import InstitutionType, Owner
from shared.db.pool import tenant_transaction
from shared.devstack.stack import DevStack
from shared.domain.errors import DomainError
from shared.domain.organisation import Scope
from shared.eventstore.context import CommandContext
from shared.messaging.consumer import EventConsumer, Reaction
from shared.projections.dispatch import Dispatch
from shared.projections.runner import ProjectionRunner
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Accepted, Command
from shared.settings import Settings
from tests.helpers import fresh_database, own_streams, running

# A failure is shrunk for up to five minutes (hypothesis' own limit) before it is shown.
pytestmark = pytest.mark.timeout(480)

settings.register_profile(
    "rebuild-ci",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    # Not `explain`: it reruns a shrunk failure hundreds of times to point at lines.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
settings.register_profile("rebuild-thorough", settings.get_profile("rebuild-ci"), max_examples=300)
PROFILE = settings.get_profile(f"rebuild-{os.environ.get('MPKS_HYPOTHESIS_PROFILE', 'ci')}")

TENANTS = ("34", "35", "36")
OWN_PDMS = 2  # PDM n of a province is f"{tenant}7{n + 1}"; one more index names a foreign one
# Long enough for a record to reach another service and back (register, publish, deliver,
# complain, close, publish, deliver: the process manager flags the complaint).
SHORTEST_SEQUENCE = 15
LONGEST_SEQUENCE = 50

# --- the world the examples run in --------------------------------------------------------


@dataclass
class World:
    registry: ServiceRuntime
    cases: ServiceRuntime
    hr: ServiceRuntime
    owner: asyncpg.Connection[Any]
    # Cases' durable consumer of the registry's stream, and its pull subscription.
    consumer: EventConsumer
    subscription: JetStreamContext.PullSubscription

    @property
    def runtimes(self) -> list[ServiceRuntime]:
        return [self.registry, self.cases, self.hr]


@pytest.fixture(scope="module")
async def world(backing: DevStack, settings: Settings) -> AsyncIterator[World]:
    """The three services' parts on a database and NATS prefix of this module's own, with
    no background tasks: each example runs the followers when it says so."""
    async with (
        fresh_database(backing.database_url, "rebuild") as database_url,
        own_streams(backing.nats_url, "rebuild") as prefix,
    ):
        own = settings.replace(database_url=database_url, nats_prefix=prefix)
        async with (
            running("registry", own) as registry,
            running("cases", own) as cases,
            running("hr", own) as hr,
        ):
            [consumer] = [c for c in cases.consumers if c.source == "registry"]
            owner = await asyncpg.connect(database_url)
            try:
                yield World(registry, cases, hr, owner, consumer, await consumer.subscribe())
            finally:
                await owner.close()


# --- the steps of a sequence --------------------------------------------------------------
#
# Records are named by index (`ref`) among those the sequence registered so far, so a
# shrunk failure reads as a short program. An actor is province-wide (None) or the operator
# of one PDM of the province it acts in (0 or 1).


@dataclass(frozen=True)
class Register:
    tenant: int
    pdm: int  # OWN_PDMS: a PDM of another province, which the rules refuse
    actor: int | None
    name: str
    kind: InstitutionType
    owner: Owner


@dataclass(frozen=True)
class Rename:
    ref: int
    name: str
    actor: int | None
    # Sent to another province than the institution's: it is not found there.
    elsewhere: bool = False


@dataclass(frozen=True)
class ChangeStatus:
    ref: int
    change: Literal["suspend", "reinstate", "close"]
    actor: int | None
    elsewhere: bool = False


@dataclass(frozen=True)
class Complain:
    # The province it comes in to; one that names an institution comes in to the
    # institution's province, or to the next one (`elsewhere`), which does not know it.
    tenant: int
    about: int | None
    concerns_child: bool
    actor: int | None
    summary: str
    elsewhere: bool = False


@dataclass(frozen=True)
class Hire:
    tenant: int
    pdm: int | None
    age: int
    actor: int | None


@dataclass(frozen=True)
class Follow:
    """Followers do their work now: all of them until nothing is left (as when they keep
    up), a service's projections, the registry's relay (publishing to NATS), or cases'
    consumer taking up to `count` messages from NATS."""

    what: Literal["all", "registry", "cases", "hr", "relay", "deliver"]
    count: int = 0


Step = Register | Rename | ChangeStatus | Complain | Hire | Follow


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of `choices`, each drawn as often as its weight says; shrinks towards the first.
    (`st.one_of` would not do: it draws its distinct strategies evenly.)"""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda n: table[n])


def mostly(usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` four times in five, and when shrunk: valid values, province-wide actors, so
    that sequences go somewhere; `rare`: what the rules refuse, PDM-scoped actors."""
    return weighted((4, usual), (1, rare))


tenants = st.integers(0, len(TENANTS) - 1)
actors = mostly(st.none(), st.integers(0, OWN_PDMS - 1))
refs = st.integers(0, 7)
# Valid names are letters and digits of any script; the invalid ones the schema refuses.
names = mostly(
    st.text(st.characters(categories=["L", "N"]), min_size=2, max_size=24),
    st.sampled_from(["", "A", "   "]),
)
summaries = mostly(st.just("Anak asuh tidak bersekolah."), st.just("Ada?"))  # under 5: refused
pdms = mostly(st.integers(0, OWN_PDMS - 1), st.just(OWN_PDMS))  # OWN_PDMS: a foreign PDM
ages = mostly(st.integers(18, 100), st.sampled_from([17, 101, -1]))
elsewhere = mostly(st.just(False), st.just(True))

follow = st.builds(
    Follow,
    what=weighted(
        (3, st.just("all")), (1, st.sampled_from(["registry", "cases", "hr", "relay", "deliver"]))
    ),
    count=st.integers(1, 8),
)
register = st.builds(
    Register,
    tenant=tenants,
    pdm=pdms,
    actor=actors,
    name=names,
    kind=st.sampled_from(InstitutionType),
    owner=st.sampled_from(Owner),
)
# Followers first: a shrunk sequence keeps its length with the simplest step, the
# followers catching up. Weighted so that records exist and travel before commands about
# them, and complaints about institutions meet their closing (the process manager's path).
steps: st.SearchStrategy[Step] = weighted(
    (2, follow),
    (2, register),
    (1, st.builds(Rename, ref=refs, name=names, actor=actors, elsewhere=elsewhere)),
    (
        1,
        st.builds(
            ChangeStatus,
            ref=refs,
            change=weighted((2, st.just("close")), (1, st.sampled_from(["suspend", "reinstate"]))),
            actor=actors,
            elsewhere=elsewhere,
        ),
    ),
    (
        1,
        st.builds(
            Complain,
            tenant=tenants,
            about=mostly(refs, st.none()),
            concerns_child=st.booleans(),
            actor=actors,
            summary=summaries,
            elsewhere=elsewhere,
        ),
    ),
    (1, st.builds(Hire, tenant=tenants, pdm=st.none() | pdms, age=ages, actor=actors)),
)


def pdm_code(tenant: str, index: int) -> str:
    if index < OWN_PDMS:
        return f"{tenant}7{index + 1}"
    # Another province's first PDM: four digits, but not of this province.
    return f"{TENANTS[(TENANTS.index(tenant) + 1) % len(TENANTS)]}71"


def scope_of(tenant: str, actor: int | None) -> Scope:
    return Scope() if actor is None else Scope(pdm=pdm_code(tenant, actor))


def valid_name(name: str) -> bool:
    return len(name) >= 2 and not name.isspace()


def born(age: int) -> date:
    """A birth date that makes someone exactly `age` years old today."""
    today = date.today()
    return date(today.year - age, today.month, 1)


# --- running a sequence -------------------------------------------------------------------


@dataclass
class Institution:
    """What the sequence knows of an institution it registered (the rules' view)."""

    tenant: str
    id: UUID
    pdm: str
    name: str
    status: str = "active"


@dataclass
class Sequence:
    world: World
    institutions: list[Institution] = field(default_factory=list)
    refused: int = 0
    accepted: int = 0
    # Complaints accepted naming an institution: what the process manager may flag.
    complaints_naming: list[UUID] = field(default_factory=list)

    def institution(self, ref: int) -> Institution:
        """The `ref`-th institution; before any, one no province ever registered."""
        if not self.institutions:
            return Institution(TENANTS[0], UUID(int=ref + 1), pdm_code(TENANTS[0], 0), "")
        return self.institutions[ref % len(self.institutions)]

    def registered(self, institution: Institution) -> bool:
        return any(known is institution for known in self.institutions)

    async def run(self, step: Step) -> None:
        match step:
            case Follow():
                await self.follow(step)
            case Register():
                await self.register(step)
            case Rename():
                await self.rename(step)
            case ChangeStatus():
                await self.change_status(step)
            case Complain():
                await self.complain(step)
            case Hire():
                await self.hire(step)

    async def register(self, step: Register) -> None:
        tenant = TENANTS[step.tenant]
        pdm = pdm_code(tenant, step.pdm)
        allowed = (
            step.pdm < OWN_PDMS
            and valid_name(step.name)
            and scope_of(tenant, step.actor).covers(Scope(pdm=pdm))
        )
        fields = {"name": step.name, "kind": step.kind, "pdm": pdm, "owner": step.owner}
        reply = await self.command(
            self.world.registry, tenant, step.actor, RegisterInstitution, fields, allowed
        )
        if reply is not None:
            self.institutions.append(Institution(tenant, reply.id, pdm, step.name))

    async def rename(self, step: Rename) -> None:
        target = self.institution(step.ref)
        tenant = self.elsewhere(target) if step.elsewhere else target.tenant
        allowed = (
            tenant == target.tenant
            and self.registered(target)
            and target.status != "closed"
            and valid_name(step.name)
            and scope_of(tenant, step.actor).covers(Scope(pdm=target.pdm))
        )
        fields = {"institution_id": target.id, "name": step.name}
        events = 1 if step.name != target.name else 0
        reply = await self.command(
            self.world.registry, tenant, step.actor, RenameInstitution, fields, allowed, events
        )
        if reply is not None:
            target.name = step.name

    async def change_status(self, step: ChangeStatus) -> None:
        target = self.institution(step.ref)
        tenant = self.elsewhere(target) if step.elsewhere else target.tenant
        command, required, becomes = {
            "suspend": (SuspendInstitution, "active", "suspended"),
            "reinstate": (ReinstateInstitution, "suspended", "active"),
            "close": (CloseInstitution, "active", "closed"),
        }[step.change]
        allowed = (
            tenant == target.tenant
            and self.registered(target)
            and target.status == required
            and scope_of(tenant, step.actor).covers(Scope(pdm=target.pdm))
        )
        fields = {"institution_id": target.id, "reason": "Keputusan rapat pleno MPKS"}
        reply = await self.command(
            self.world.registry, tenant, step.actor, command, fields, allowed
        )
        if reply is not None:
            target.status = becomes

    async def complain(self, step: Complain) -> None:
        about = self.institution(step.about) if step.about is not None else None
        if about is None:
            tenant = TENANTS[step.tenant]
        else:
            tenant = self.elsewhere(about) if step.elsewhere else about.tenant
        actor_scope = scope_of(tenant, step.actor)
        allowed = len(step.summary) >= 5
        fields: dict[str, Any] = {
            "channel": "phone",
            "summary": step.summary,
            "concerns_child": step.concerns_child,
        }
        if about is not None:
            fields["institution_id"] = about.id
            # The rule checks cases' directory as it stands (what NATS has brought so far).
            known = await self.world.owner.fetchrow(
                """SELECT pdm FROM cases.institution_directory
                   WHERE tenant_id = $1 AND institution_id = $2""",
                tenant,
                about.id,
            )
            allowed = allowed and known is not None and actor_scope.covers(Scope(pdm=known["pdm"]))
        reply = await self.command(
            self.world.cases, tenant, step.actor, ReceiveComplaint, fields, allowed
        )
        if reply is not None and about is not None:
            self.complaints_naming.append(reply.id)

    async def hire(self, step: Hire) -> None:
        tenant = TENANTS[step.tenant]
        pdm = pdm_code(tenant, step.pdm) if step.pdm is not None else None
        allowed = (
            18 <= step.age <= 100
            and (step.pdm is None or step.pdm < OWN_PDMS)
            and scope_of(tenant, step.actor).covers(Scope(pdm=pdm))
        )
        fields = {"full_name": "Pekerja Sosial", "birth_date": born(step.age), "pdm": pdm}
        await self.command(self.world.hr, tenant, step.actor, RegisterWorker, fields, allowed)

    @staticmethod
    def elsewhere(institution: Institution) -> str:
        return TENANTS[(TENANTS.index(institution.tenant) + 1) % len(TENANTS)]

    async def command(
        self,
        runtime: ServiceRuntime,
        tenant: str,
        actor: int | None,
        command: type[Command],
        fields: dict[str, Any],
        allowed: bool,
        events: int = 1,
    ) -> Accepted | None:
        """Run a command as an actor of `tenant` sends it: decoded from its fields (the
        schema checks them), then through the service's bus. The rules must refuse it
        exactly when `allowed` is false, and a refused command records nothing."""
        ctx = CommandContext(
            tenant=tenant,
            actor=f"operator-{actor}" if actor is not None else "admin",
            correlation_id=f"rebuild-{secrets.token_hex(4)}",
            scope=scope_of(tenant, actor),
        )
        async with runtime.db.acquire() as conn:
            before = await runtime.logs.head(conn, tenant)
        reply: Accepted | None = None
        try:
            outcome = await runtime.bus.execute(msgspec.convert(fields, command), ctx)
            reply = msgspec.json.decode(outcome.reply, type=Accepted)
        except (DomainError, msgspec.ValidationError) as refusal:
            note(f"{command.__name__} in {tenant} refused: {refusal}")
        async with runtime.db.acquire() as conn:
            recorded = len(await runtime.logs.read(conn, tenant, after=before, limit=10))
        if reply is None:
            self.refused += 1
            assert not allowed, f"{command.__name__} {fields} was refused; the rules allow it"
            assert recorded == 0, f"a refused {command.__name__} recorded events"
        else:
            self.accepted += 1
            assert allowed, f"{command.__name__} {fields} was accepted; the rules refuse it"
            assert recorded == events, f"{command.__name__} recorded {recorded} events"
        return reply

    async def follow(self, step: Follow) -> None:
        world = self.world
        if step.what == "all":
            await settle(world)
        elif step.what == "relay":
            await world.registry.relay.publish_pending()
        elif step.what == "deliver":
            await deliver(world, step.count)
        else:
            runtime = {"registry": world.registry, "cases": world.cases, "hr": world.hr}
            await runtime[step.what].projections.catch_up()


async def deliver(world: World, most: int) -> int:
    """Cases' consumer handles up to `most` of the messages NATS holds for it (as its
    background task does, message by message); returns how many it took."""
    published = sum((await world.registry.relay.positions()).values())
    applied = sum((await world.consumer.positions()).values())
    if published <= applied:
        return 0
    messages = await world.subscription.fetch(min(most, published - applied), timeout=5)
    for message in messages:
        await world.consumer.handle_message(message)
    return len(messages)


async def settle(world: World) -> None:
    """Every follower runs until nothing is left: the live read models caught up with the
    logs (a process manager's commands add to cases' log on the way)."""
    for _ in range(10):
        for runtime in world.runtimes:
            await runtime.projections.catch_up()
        await world.registry.relay.publish_pending()
        while await deliver(world, 64):
            pass
        if not await behind(world):
            return
    raise AssertionError(f"the followers did not catch up: {await behind(world)}")


async def behind(world: World) -> dict[str, dict[str, tuple[int, int]]]:
    """Per follower, the tenants whose position is short of their log's head."""
    late: dict[str, dict[str, tuple[int, int]]] = {}

    def compare(follower: str, positions: dict[str, int], heads: dict[str, int]) -> None:
        short = {t: (positions.get(t, 0), h) for t, h in heads.items() if positions.get(t, 0) < h}
        if short:
            late[follower] = short

    heads: dict[str, dict[str, int]] = {}
    for runtime in world.runtimes:
        async with runtime.db.acquire() as conn:
            heads[runtime.name] = await runtime.logs.heads(conn)
        for projection in runtime.projections.projections:
            rows = await world.owner.fetch(
                f"""SELECT tenant_id, position FROM {runtime.name}.projection_positions
                    WHERE projection = $1""",
                projection.name,
            )
            positions = {r["tenant_id"]: r["position"] for r in rows}
            compare(f"{runtime.name}/{projection.name}", positions, heads[runtime.name])
    for runtime in world.runtimes:
        for consumer in runtime.consumers:
            compare(f"consumer {consumer.name}", await consumer.positions(), heads[consumer.source])
    return late


# --- read models: find, snapshot, rebuild --------------------------------------------------

Rows = Counter[tuple[tuple[str, Any], ...]]
Rebuild = Callable[[], Awaitable[object]]


def read_models(world: World) -> dict[str, tuple[tuple[str, ...], Rebuild]]:
    """Every read model of every service, by name: the tables it declares it owns and how
    it is rebuilt from the events."""
    found: dict[str, tuple[tuple[str, ...], Rebuild]] = {}
    for runtime in world.runtimes:
        runner = runtime.projections
        for projection in runner.projections:
            if projection.tables:

                async def rebuild(
                    runner: ProjectionRunner = runner, name: str = projection.name
                ) -> object:
                    return await runner.rebuild(world.owner, name)

                found[f"{runtime.name}/{projection.name}"] = (projection.tables, rebuild)
        for consumer in runtime.consumers:
            source = {r.name: r for r in world.runtimes}[consumer.source]
            for reaction in consumer.reactions:
                if reaction.tables:

                    async def replay(
                        target: ServiceRuntime = runtime,
                        source: ServiceRuntime = source,
                        reaction: Reaction = reaction,
                    ) -> object:
                        return await rebuild_reaction(world, target, source, reaction)

                    found[f"{runtime.name}/{reaction.name}"] = (reaction.tables, replay)
    return found


async def rebuild_reaction(
    world: World, target: ServiceRuntime, source: ServiceRuntime, reaction: Reaction
) -> int:
    """A read model fed by another service's events, rebuilt as a projection is: its rows
    dropped and every tenant's log of the source (what its events feed serves) replayed
    into it, each tenant in one transaction. (`mpks rebuild` covers only a service's own
    projections.)"""
    async with world.owner.transaction():
        for table in reaction.tables:
            await world.owner.execute(f"DELETE FROM {table}")
    dispatch = Dispatch(reaction, target.sources[source.name])
    replayed = 0
    async with source.db.acquire() as conn:
        heads = await source.logs.heads(conn)
    for tenant, head in heads.items():
        if head == 0:
            continue
        async with source.db.acquire() as conn:
            events = await source.logs.read(conn, tenant, after=0, limit=head)
        async with tenant_transaction(target.db, tenant) as conn:
            for event in events:
                await dispatch.deliver(conn, event)
        replayed += len(events)
    return replayed


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


async def snapshot(world: World, tables: tuple[str, ...]) -> dict[str, Rows]:
    """Every row of `tables`, as the owner sees them (all tenants), counted."""
    return {
        table: Counter(
            tuple((k, _hashable(v)) for k, v in row.items())
            for row in await world.owner.fetch(f"SELECT * FROM {table}")
        )
        for table in tables
    }


def differences(live: dict[str, Rows], rebuilt: dict[str, Rows], shown: int = 3) -> list[str]:
    """Per table, the rows only one side has (the first few of them)."""
    found = []
    for table in live:
        only_live, only_rebuilt = live[table] - rebuilt[table], rebuilt[table] - live[table]
        if only_live or only_rebuilt:
            found.append(
                f"{table}: {only_live.total()} rows only live, e.g. "
                f"{[dict(r) for r in list(only_live)[:shown]]}; "
                f"{only_rebuilt.total()} only rebuilt, e.g. "
                f"{[dict(r) for r in list(only_rebuilt)[:shown]]}"
            )
    return found


# --- the property -------------------------------------------------------------------------


@PROFILE
@given(sequence=st.lists(steps, min_size=SHORTEST_SEQUENCE, max_size=LONGEST_SEQUENCE))
async def test_every_read_model_rebuilt_from_the_events_equals_the_live_one(
    world: World, sequence: list[Step]
) -> None:
    # The program, one step a line, in the report of a failure (shrunk).
    note("steps:\n" + "\n".join(f"  {step}" for step in sequence))
    # Examples share the logs: each adds to what the earlier ones recorded (its commands
    # name only records it made, or unknown ones), and every read model is compared whole.
    # Emptying the logs between examples would number them from 1 again (the hash chain
    # numbers on from the head) and JetStream would drop the reused message ids.
    run = Sequence(world)
    for step in sequence:
        await run.run(step)
    await settle(world)

    models = read_models(world)
    assert {"registry/institutions", "cases/complaints", "cases/institution-directory"} <= set(
        models
    ), "a read model was not found"
    for name, (tables, rebuild) in models.items():
        live = await snapshot(world, tables)
        await rebuild()
        rebuilt = await snapshot(world, tables)
        assert live == rebuilt, f"{name}: {differences(live, rebuilt)}"
    note(f"{run.accepted} commands accepted, {run.refused} refused")
    flagged = await world.owner.fetchval(
        "SELECT count(*) FROM cases.complaints WHERE id = ANY($1) AND flags <> '{}'",
        run.complaints_naming,
    )
    # What the examples exercised (`--hypothesis-show-statistics`).
    event(f"commands accepted: {min(run.accepted, 10) // 5 * 5}+")
    event(f"commands refused: {min(run.refused, 10) // 5 * 5}+")
    event(f"complaints naming an institution: {min(len(run.complaints_naming), 2)}+")
    event(f"complaints flagged by the process manager: {min(flagged, 1)}+")
    event(f"institutions registered: {min(len(run.institutions), 4) // 2 * 2}+")
    assert not await behind(world), "a rebuild left a read model short of its log"
