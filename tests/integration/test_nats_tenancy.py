"""A province's NATS user reads its own events from JetStream and nothing else.

A private nats-server (free port, temporary directory) runs with the accounts section that
`mpks up` gives the embedded server. The services user fills the registry and cases
streams with events of provinces 35 and 31 and only then provisions the provinces'
streams; the tests act as `tenant-35` and `tenant-31` the way another system of that
province would, and try every way out of its account.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import msgspec
import nats
import nats.errors
import nats.js.errors
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ExternalStream

from mpks.main import main as cli_main
from services.bootstrap import SERVICES as SERVICE_NAMES
from services.registry.domain.institution import Owner
from shared.audit.checkpoints import publish as publish_checkpoint
from shared.audit.signing import Checkpoint, sign
from shared.devstack.nats import EmbeddedNats
from shared.devstack.stack import DevStack
from shared.messaging.permissions import (
    SERVICES_API_PREFIX,
    SERVICES_USER,
    ensure_province_streams,
    province_api_prefix,
    province_stream,
    render_accounts,
    service_nats_password,
    source_deliver_prefix,
    tenant_credentials,
    tenant_nats_password,
    tenant_user,
)
from shared.messaging.streams import Subjects, ensure_stream
from shared.settings import Settings
from tests.helpers import eventually, fresh_database, register_institution_in, running

pytestmark = pytest.mark.timeout(90)

PREFIX = "tenancytest"
SUBJECTS = Subjects(PREFIX)
REGISTRY = SUBJECTS.stream("registry")
CASES = SUBJECTS.stream("cases")
EVENTS = province_stream(PREFIX)
SERVICES = ("registry", "cases")
# Requests that permissions swallow get no answer; keep the wait for it short.
TIMEOUT = 0.2

EVENTS_35 = [
    f"{PREFIX}.registry.35.institution.registered",
    f"{PREFIX}.cases.35.case.opened",
    f"{PREFIX}.registry.35.institution.renamed",
    f"{PREFIX}.registry.35.institution.closed",
]
# One service's events keep their order in the province's stream (two sources interleave).
REGISTRY_35 = [s for s in EVENTS_35 if ".registry." in s]
EVENTS_31 = [
    f"{PREFIX}.registry.31.institution.registered",
    f"{PREFIX}.cases.31.case.opened",
    f"{PREFIX}.registry.31.institution.renamed",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Session:
    """A connection and the asynchronous errors the server sent it."""

    nc: Client
    errors: list[str] = field(default_factory=list)

    def violations(self) -> list[str]:
        return [e for e in self.errors if "permissions violation" in e.lower()]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(nats_prefix=PREFIX)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[EmbeddedNats]:
    nats_server = EmbeddedNats(
        tmp_path_factory.mktemp("nats-tenancy"),
        _free_port(),
        config_text=render_accounts(settings),
    )
    with nats_server:
        yield nats_server


def _url(server: EmbeddedNats, user: str, password: str) -> str:
    return f"nats://{user}:{password}@127.0.0.1:{server.port}"


async def _connect(url: str) -> Session:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False, connect_timeout=2)
    return Session(nc, errors)


async def _province_messages(services_nc: Client, code: str) -> int:
    js = services_nc.jetstream(prefix=province_api_prefix(code))
    return int((await js.stream_info(EVENTS)).state.messages)


async def _province_holds(services_nc: Client, code: str, count: int) -> None:
    async def holds() -> bool:
        return await _province_messages(services_nc, code) >= count

    await eventually(holds, within=30, interval=0.1)


@pytest.fixture(scope="module")
async def services_nc(server: EmbeddedNats, settings: Settings) -> AsyncIterator[Client]:
    """The services user; events are published before any province's stream exists."""
    session = await _connect(_url(server, SERVICES_USER, service_nats_password(settings)))
    js = session.nc.jetstream()
    await js.add_stream(name=REGISTRY, subjects=[SUBJECTS.of_service("registry")])
    await js.add_stream(name=CASES, subjects=[SUBJECTS.of_service("cases")])
    for subject in EVENTS_35 + EVENTS_31:
        await js.publish(subject, json.dumps({"subject": subject}).encode())
    # Twice: the second run updates what the first created.
    for _ in range(2):
        await ensure_province_streams(session.nc, PREFIX, SERVICES)
    await _province_holds(session.nc, "35", len(EVENTS_35))
    await _province_holds(session.nc, "31", len(EVENTS_31))
    yield session.nc
    await session.nc.close()


async def _tenant(server: EmbeddedNats, settings: Settings, code: str) -> Session:
    return await _connect(_url(server, tenant_user(code), tenant_nats_password(settings, code)))


@pytest.fixture
async def tenant_35(
    server: EmbeddedNats, settings: Settings, services_nc: Client
) -> AsyncIterator[Session]:
    session = await _tenant(server, settings, "35")
    yield session
    await session.nc.close()


@pytest.fixture
async def tenant_31(
    server: EmbeddedNats, settings: Settings, services_nc: Client
) -> AsyncIterator[Session]:
    session = await _tenant(server, settings, "31")
    yield session
    await session.nc.close()


async def _stream_messages(services_nc: Client, stream: str) -> int:
    info = await services_nc.jetstream().stream_info(stream)
    return int(info.state.messages)


async def _violations_reach(session: Session, count: int) -> None:
    async def reached() -> bool:
        return len(session.violations()) >= count

    await eventually(reached, within=2, interval=0.02)


async def _refused(session: Session, attempt: Callable[[], Awaitable[object]]) -> None:
    """The attempt gets no answer (the server dropped it) and a permissions violation."""
    before = len(session.violations())
    with pytest.raises(nats.errors.TimeoutError):
        await attempt()
    await _violations_reach(session, before + 1)


async def _fetch(sub: nats.js.JetStreamContext.PullSubscription, count: int) -> list[Msg]:
    messages: list[Msg] = []
    while len(messages) < count:
        messages += await sub.fetch(count - len(messages), timeout=5)
    return messages


async def test_province_pulls_exactly_its_own_events_with_acks(
    tenant_35: Session, services_nc: Client, settings: Settings
) -> None:
    # What `mpks nats-credentials` prints is what a province's system needs.
    creds = tenant_credentials(settings, "35")
    js = tenant_35.nc.jetstream(timeout=5)
    # Any durable name, any filter: the account holds only the province's events, also
    # those published before its stream existed.
    sub = await js.pull_subscribe(
        creds.filter_subject,
        durable="erp-sync",
        stream=creds.stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
    )
    messages = await _fetch(sub, len(EVENTS_35))
    for msg in messages:
        await msg.ack_sync(timeout=5)
    assert sorted(m.subject for m in messages) == sorted(EVENTS_35)
    assert [m.subject for m in messages if ".registry." in m.subject] == REGISTRY_35

    # Later events follow, durably: the consumer resumes where its acks left it.
    late = f"{PREFIX}.registry.35.institution.reopened"
    await services_nc.jetstream().publish(late, b"{}")
    (msg,) = await _fetch(sub, 1)
    await msg.ack_sync(timeout=5)
    assert msg.subject == late
    info = await js.consumer_info(creds.stream, "erp-sync")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    assert await js.delete_consumer(creds.stream, "erp-sync")
    assert tenant_35.errors == []


async def test_province_push_consumer_with_acks_and_flow_control(
    tenant_35: Session, services_nc: Client
) -> None:
    expected = await _province_messages(services_nc, "35")
    js = tenant_35.nc.jetstream(timeout=5)
    received: list[Msg] = []
    sub = await js.subscribe(
        f"{PREFIX}.*.35.>",
        stream=EVENTS,
        durable="erp-push",
        manual_ack=True,
        flow_control=True,
        idle_heartbeat=1.0,
    )
    while len(received) < expected:
        msg = await sub.next_msg(timeout=5)
        await msg.ack_sync(timeout=5)
        received.append(msg)
    subjects = [m.subject for m in received]
    assert set(EVENTS_35) <= set(subjects)
    assert {s.split(".")[2] for s in subjects} == {"35"}
    info = await js.consumer_info(EVENTS, "erp-push")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    await sub.unsubscribe()
    await js.delete_consumer(EVENTS, "erp-push")
    assert tenant_35.errors == []


async def test_province_push_consumer_delivers_inside_its_account_only(
    tenant_31: Session, tenant_35: Session, services_nc: Client
) -> None:
    """The probe's reproduction: 31 delivered its events into `_INBOX_t35.push` and into
    other streams' subjects. Now any deliver subject is 31's own account's."""
    province_35 = await _province_messages(services_nc, "35")
    streams = {s: await _stream_messages(services_nc, s) for s in (REGISTRY, CASES)}

    seen_by_35: list[str] = []
    seen_by_services: list[str] = []

    async def collect_35(msg: Msg) -> None:
        seen_by_35.append(msg.subject)

    async def collect_services(msg: Msg) -> None:
        seen_by_services.append(msg.subject)

    targets = [
        "_INBOX_t35.push",
        "_INBOX.services",
        f"{PREFIX}.registry.31.institution.registered",
        f"{PREFIX}.cases.35.case.opened",
        f"{source_deliver_prefix(PREFIX, '35')}.S.x",
        f"{SERVICES_API_PREFIX}.CONSUMER.CREATE.{REGISTRY}.stolen.{PREFIX}.registry.31.x",
    ]
    services_subs = []
    for target in targets:
        await tenant_35.nc.subscribe(target, cb=collect_35)
        services_subs.append(await services_nc.subscribe(target, cb=collect_services))
    await tenant_35.nc.flush()
    await services_nc.flush()
    events_31 = await _province_messages(services_nc, "31")

    js = tenant_31.nc.jetstream(timeout=5)
    for n, target in enumerate(targets):
        # 31 listens on the deliver subject itself, so the consumer really delivers.
        inbox = await tenant_31.nc.subscribe(target)
        await js.add_consumer(
            EVENTS,
            ConsumerConfig(
                durable_name=f"push-{n}",
                deliver_subject=target,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
            ),
        )
        received = [(await inbox.next_msg(timeout=5)).subject for _ in range(events_31)]
        assert set(EVENTS_31) <= set(received)
        assert {s.split(".")[2] for s in received} == {"31"}
        await inbox.unsubscribe()
        await js.delete_consumer(EVENTS, f"push-{n}")

    # Whatever the server had routed to 35 or the services arrives before the answer to
    # these pings.
    await tenant_35.nc.flush()
    await services_nc.flush()
    assert (seen_by_35, seen_by_services) == ([], [])
    for sub in services_subs:
        await sub.unsubscribe()
    assert await _province_messages(services_nc, "35") == province_35
    assert {s: await _stream_messages(services_nc, s) for s in streams} == streams
    with pytest.raises(nats.js.errors.NotFoundError):
        await services_nc.jetstream().consumer_info(REGISTRY, "stolen")
    assert tenant_31.errors == []


async def test_province_cannot_create_consumers_on_the_services_streams(
    tenant_35: Session, services_nc: Client
) -> None:
    push = {"durable_name": "stolen", "deliver_subject": "_INBOX_t35.push"}
    # Its own account's API has no such stream.
    js = tenant_35.nc.jetstream(timeout=5)
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.add_consumer(
            REGISTRY, ConsumerConfig(durable_name="stolen", deliver_subject="_INBOX_t35.push")
        )
    # The services' API, which its stream's sources use, is not the user's to call.
    for filter_subject in (f"{PREFIX}.registry.35.>", f"{PREFIX}.registry.31.>"):
        subject = f"{SERVICES_API_PREFIX}.CONSUMER.CREATE.{REGISTRY}.stolen.{filter_subject}"
        body = json.dumps(
            {"stream_name": REGISTRY, "config": {**push, "filter_subject": filter_subject}}
        ).encode()
        await _refused(tenant_35, partial(tenant_35.nc.request, subject, body, timeout=TIMEOUT))
    with pytest.raises(nats.js.errors.NotFoundError):
        await services_nc.jetstream().consumer_info(REGISTRY, "stolen")


async def test_province_cannot_read_another_provinces_events(
    tenant_35: Session, services_nc: Client
) -> None:
    js = tenant_35.nc.jetstream(timeout=5)
    # Consumers with another province's filter, or none, find only its own events.
    mine = await _province_messages(services_nc, "35")
    for filter_subject, expected in ((f"{PREFIX}.registry.31.>", 0), (f"{PREFIX}.>", mine)):
        sub = await js.pull_subscribe(filter_subject, durable="wide", stream=EVENTS)
        assert (await js.consumer_info(EVENTS, "wide")).num_pending == expected
        assert {m.subject.split(".")[2] for m in await _fetch(sub, expected)} <= {"35"}
        await js.delete_consumer(EVENTS, "wide")
    # Stream reads by sequence or subject: its stream holds nothing of 31's.
    total = (await js.stream_info(EVENTS)).state.last_seq
    for seq in range(1, total + 1):
        for direct in (False, True):
            subject = (await js.get_msg(EVENTS, seq, direct=direct)).subject
            assert subject is not None
            assert subject.split(".")[2] == "35"
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_last_msg(EVENTS, f"{PREFIX}.registry.31.institution.renamed")
    # Reads of the services' streams are not even sent (its account has no such streams).
    quick = tenant_35.nc.jetstream(timeout=TIMEOUT)
    for attempt in (
        partial(quick.stream_info, REGISTRY),
        partial(quick.get_msg, REGISTRY, 1),
        partial(quick.get_msg, REGISTRY, 1, direct=True),
        partial(quick.get_last_msg, REGISTRY, f"{PREFIX}.registry.31.institution.renamed"),
    ):
        await _refused(tenant_35, attempt)


async def test_province_cannot_receive_raw_subjects_of_others(
    tenant_35: Session, tenant_31: Session, services_nc: Client
) -> None:
    received: list[str] = []

    async def collect(msg: Msg) -> None:
        received.append(msg.subject)

    for subject in (
        ">",
        f"{PREFIX}.>",
        f"{PREFIX}.registry.31.>",
        f"{source_deliver_prefix(PREFIX, '31')}.>",
        "_INBOX.>",
    ):
        await tenant_35.nc.subscribe(subject, cb=collect)
    await tenant_35.nc.flush()
    before = await _province_messages(services_nc, "31")
    await services_nc.jetstream().publish(f"{PREFIX}.registry.31.institution.moved", b"{}")
    await services_nc.publish(f"{PREFIX}.hr.31.worker.hired", b"{}")
    # The services' own inbox traffic.
    await services_nc.request("$JS.API.INFO", b"", timeout=5)
    # 31's stream got its event; anything routed to 35 arrives before the answer to a ping.
    await _province_holds(services_nc, "31", before + 1)
    await tenant_35.nc.flush()
    assert [s for s in received if ".31." in s or s.startswith("_INBOX.")] == []


async def test_province_cannot_publish_or_manage_streams(
    tenant_35: Session, services_nc: Client, settings: Settings
) -> None:
    streams = {s: await _stream_messages(services_nc, s) for s in (REGISTRY, CASES)}
    mine = await _province_messages(services_nc, "35")
    violations = len(tenant_35.violations())
    for subject in (
        f"{PREFIX}.registry.35.institution.registered",
        f"{PREFIX}.registry.31.institution.closed",
        f"{source_deliver_prefix(PREFIX, '35')}.S.x",
        f"$JS.FC.{REGISTRY}.x.y",
    ):
        await tenant_35.nc.publish(subject, b"{}")
    await _violations_reach(tenant_35, violations + 4)
    # Nor may it listen in on (and so answer) requests to its account's API.
    await tenant_35.nc.subscribe(f"$JS.API.STREAM.INFO.{EVENTS}")
    await _violations_reach(tenant_35, violations + 5)

    js = tenant_35.nc.jetstream(timeout=TIMEOUT)
    await _refused(tenant_35, lambda: js.publish(f"{PREFIX}.registry.35.institution.x", b"{}"))
    await _refused(tenant_35, lambda: js.purge_stream(EVENTS))
    await _refused(tenant_35, lambda: js.delete_stream(EVENTS))
    await _refused(tenant_35, lambda: js.delete_msg(EVENTS, 1))
    await _refused(tenant_35, lambda: js.add_stream(name="MINE", subjects=["mine.>"]))
    # Its stream's sources are the platform's: another deliver prefix would point the
    # services' consumer at a subject of the services' account.
    config = (await js.stream_info(EVENTS)).config
    assert config.sources is not None
    for source in config.sources:
        source.external = ExternalStream(api=SERVICES_API_PREFIX, deliver=f"{PREFIX}.cases.35")
    await _refused(tenant_35, lambda: js.update_stream(config))

    assert {s: await _stream_messages(services_nc, s) for s in streams} == streams
    assert await _province_messages(services_nc, "35") == mine


async def test_wrong_or_borrowed_password_is_refused(
    server: EmbeddedNats, settings: Settings
) -> None:
    for user, password in (
        (tenant_user("35"), "not-the-password"),
        (tenant_user("35"), tenant_nats_password(settings, "31")),
        (SERVICES_USER, tenant_nats_password(settings, "35")),
    ):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await _connect(_url(server, user, password))


async def test_devstack_nats_url_logs_in_as_services(tmp_path: Path, settings: Settings) -> None:
    stack = DevStack(
        tmp_path,
        "postgresql://not-started-here",
        None,
        nats_port=_free_port(),
        nats_config_text=render_accounts(settings),
        nats_credentials=(SERVICES_USER, service_nats_password(settings)),
    )
    with stack:
        assert stack.nats_url.startswith(f"nats://{SERVICES_USER}:")
        session = await _connect(stack.nats_url)
        # Full access: the services manage streams.
        await session.nc.jetstream().add_stream(name="ANY", subjects=["any.>"])
        await session.nc.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await _connect(f"nats://127.0.0.1:{stack.nats_port}")
        # The config holds passwords: readable by its owner only.
        assert (tmp_path / "nats" / "nats.conf").stat().st_mode & 0o777 == 0o600


async def test_province_stream_and_consumer_survive_a_restart(
    tmp_path: Path, settings: Settings
) -> None:
    nats_server = EmbeddedNats(
        tmp_path, _free_port(), config_text=render_accounts(settings, tenants=["35"])
    )
    with nats_server:
        services = await _connect(_url(nats_server, SERVICES_USER, service_nats_password(settings)))
        for service in SERVICES:
            await ensure_stream(services.nc.jetstream(), SUBJECTS, service)
        for subject in REGISTRY_35[:2]:
            await services.nc.jetstream().publish(subject, b"{}")
        await ensure_province_streams(services.nc, PREFIX, SERVICES, tenants=["35"])
        await _province_holds(services.nc, "35", 2)
        tenant = await _tenant(nats_server, settings, "35")
        sub = await tenant.nc.jetstream(timeout=5).pull_subscribe(
            f"{PREFIX}.*.35.>", durable="erp-sync", stream=EVENTS
        )
        (first,) = await _fetch(sub, 1)
        await first.ack_sync(timeout=5)
        await tenant.nc.close()
        await services.nc.close()

        nats_server.stop()
        nats_server.start()
        services = await _connect(_url(nats_server, SERVICES_USER, service_nats_password(settings)))
        await services.nc.jetstream().publish(REGISTRY_35[2], b"{}")
        tenant = await _tenant(nats_server, settings, "35")
        sub = await tenant.nc.jetstream(timeout=5).pull_subscribe_bind("erp-sync", EVENTS)
        rest = await _fetch(sub, 2)
        assert [first.subject, *(m.subject for m in rest)] == REGISTRY_35
        await tenant.nc.close()
        await services.nc.close()


async def test_production_config_takes_passwords_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = Settings(nats_prefix=PREFIX, jwt_secret="a-production-secret-" * 3)
    text = render_accounts(production, tenants=["35"])
    assert service_nats_password(production) not in text
    assert tenant_nats_password(production, "35") not in text
    with pytest.raises(PermissionError):
        tenant_credentials(production, "35")
    # nats-server reads `$MPKS_NATS_PASSWORD_<USER>` from its environment.
    monkeypatch.setenv("MPKS_NATS_PASSWORD_SERVICES", "services-secret")
    monkeypatch.setenv("MPKS_NATS_PASSWORD_TENANT_35", "tenant-secret")
    with EmbeddedNats(tmp_path, _free_port(), config_text=text) as nats_server:
        for user, password in ((SERVICES_USER, "services-secret"), ("tenant-35", "tenant-secret")):
            session = await _connect(_url(nats_server, user, password))
            assert await session.nc.jetstream().account_info()
            await session.nc.close()


async def test_services_publish_through_the_relay_and_the_province_consumes(
    server: EmbeddedNats,
    settings: Settings,
    services_nc: Client,
    tenant_35: Session,
    backing: DevStack,
) -> None:
    """The services run unchanged as `services`: the registry's relay publishes a
    registration of province 35, which reaches 35's stream and only 35's."""
    province_31 = await _province_messages(services_nc, "31")
    async with fresh_database(backing.database_url, "natsacct") as database_url:
        service_settings = settings.replace(
            database_url=database_url,
            nats_url=_url(server, SERVICES_USER, service_nats_password(settings)),
        )
        async with running("registry", service_settings) as runtime:
            await register_institution_in(
                runtime,
                "35",
                "LKSA Aisyiyah Surabaya",
                owner=Owner.AISYIYAH,
                pdm="3578",
                actor="natsacct-test",
            )
            assert await runtime.relay.publish_pending() == 1

    js = tenant_35.nc.jetstream(timeout=5)
    sub = await js.pull_subscribe(
        f"{PREFIX}.registry.35.institution.*",
        durable="erp-registry",
        stream=EVENTS,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST),
    )
    (msg,) = await _fetch(sub, 1)
    await msg.ack_sync(timeout=5)
    envelope = json.loads(msg.data)
    assert (msg.subject, envelope["tenant"]) == (
        f"{PREFIX}.registry.35.institution.registered",
        "35",
    )
    assert await _province_messages(services_nc, "31") == province_31


async def test_cli_prints_the_config_and_credentials_a_province_logs_in_with(
    server: EmbeddedNats,
    services_nc: Client,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("JWT_SECRET", "JWT_ALGORITHM", "JWKS_URL"):
        monkeypatch.delenv(f"MPKS_{name}", raising=False)
    monkeypatch.setenv("MPKS_NATS_PREFIX", PREFIX)
    assert cli_main(["nats-config"]) == 0
    # What this module's server runs with.
    assert capsys.readouterr().out == render_accounts(settings)

    assert cli_main(["nats-credentials", "--tenant", "35"]) == 0
    printed = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    assert (printed["account"], printed["stream"]) == ("T35", EVENTS)
    session = await _connect(_url(server, printed["user"], printed["password"]))
    js = session.nc.jetstream(timeout=5)
    sub = await js.pull_subscribe(
        printed["filter_subject"], durable="cli", stream=printed["stream"]
    )
    subjects = [m.subject for m in await _fetch(sub, len(EVENTS_35))]
    assert {s.split(".")[2] for s in subjects} == {"35"}
    await js.delete_consumer(EVENTS, "cli")
    await session.nc.close()

    # `nats-provision` gives every province its stream, over every service and the
    # checkpoints.
    monkeypatch.setenv(
        "MPKS_NATS_URL", _url(server, SERVICES_USER, service_nats_password(settings))
    )
    assert await asyncio.to_thread(cli_main, ["nats-provision"]) == 0
    info = await services_nc.jetstream(prefix=province_api_prefix("11")).stream_info(EVENTS)
    assert info.config.sources is not None
    assert sorted(source.name for source in info.config.sources) == sorted(
        [*(SUBJECTS.stream(service) for service in SERVICE_NAMES), f"{PREFIX.upper()}_CHECKPOINTS"]
    )


async def test_province_receives_the_signed_checkpoints_of_its_logs_only(
    tenant_35: Session, services_nc: Client
) -> None:
    """What a province's copy of its events is verified against reaches it over NATS too:
    the checkpoints the services sign for its logs, none of another province's."""
    key = Ed25519PrivateKey.generate()
    signed = [sign(key, "registry", t, 12, bytes(32)) for t in ("35", "31")]
    for checkpoint in signed:
        await publish_checkpoint(services_nc.jetstream(), PREFIX, checkpoint)
    js = tenant_35.nc.jetstream(timeout=5)
    sub = await js.pull_subscribe(
        f"{PREFIX}.checkpoints.>",
        durable="auditor-checkpoints",
        stream=EVENTS,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
    )
    (msg,) = await _fetch(sub, 1)
    await msg.ack_sync(timeout=5)
    received = msgspec.json.decode(msg.data, type=Checkpoint)
    assert msg.subject == f"{PREFIX}.checkpoints.35.registry"
    assert received == signed[0]
    assert received.verifies({received.key_id: key.public_key()})
    # 31's checkpoint is in the services' stream, never in 35's account.
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=1)
    assert await js.delete_consumer(EVENTS, "auditor-checkpoints")
    assert tenant_35.errors == []
