"""A province's NATS user reads its own events from JetStream and nothing else.

A private nats-server (free port, temporary directory) runs with the authorization section
that `mpks up` gives the embedded server. The services user fills a stream with events of
provinces 35 and 31; the tests then act as `tenant-35` the way another system of that
province would, and try every way out of its lane.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from shared.devstack.nats import EmbeddedNats
from shared.devstack.stack import DevStack
from shared.messaging.permissions import (
    SERVICES_USER,
    render_authorization,
    service_nats_password,
    tenant_credentials,
    tenant_inbox_prefix,
    tenant_nats_password,
    tenant_user,
)
from shared.messaging.streams import Subjects
from shared.settings import Settings
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(60)

PREFIX = "tenancytest"
SUBJECTS = Subjects(PREFIX)
STREAM = SUBJECTS.stream("registry")
# Requests that permissions swallow get no answer; keep the wait for it short.
TIMEOUT = 0.2

EVENTS_35 = [
    f"{PREFIX}.registry.35.institution.registered",
    f"{PREFIX}.registry.35.institution.renamed",
    f"{PREFIX}.registry.35.institution.closed",
]
EVENTS_31 = [
    f"{PREFIX}.registry.31.institution.registered",
    f"{PREFIX}.registry.31.institution.renamed",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Session:
    """A tenant connection and the asynchronous errors the server sent it."""

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
        config_text=render_authorization(settings),
    )
    with nats_server:
        yield nats_server


def _url(server: EmbeddedNats, user: str, password: str) -> str:
    return f"nats://{user}:{password}@127.0.0.1:{server.port}"


async def _connect(url: str, inbox_prefix: str | None = None) -> Session:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    options: dict[str, object] = {}
    if inbox_prefix is not None:
        options["inbox_prefix"] = inbox_prefix.encode()
    nc = await nats.connect(
        url,
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=2,
        **options,
    )
    return Session(nc, errors)


@pytest.fixture(scope="module")
async def services_nc(server: EmbeddedNats, settings: Settings) -> AsyncIterator[Client]:
    """The services user, with a registry stream holding three events of 35 and two of 31."""
    session = await _connect(_url(server, SERVICES_USER, service_nats_password(settings)))
    js = session.nc.jetstream()
    await js.add_stream(name=STREAM, subjects=[SUBJECTS.of_service("registry")])
    for subject in EVENTS_35 + EVENTS_31:
        await js.publish(subject, json.dumps({"subject": subject}).encode())
    yield session.nc
    await session.nc.close()


@pytest.fixture
async def tenant_35(
    server: EmbeddedNats, settings: Settings, services_nc: Client
) -> AsyncIterator[Session]:
    session = await _connect(
        _url(server, tenant_user("35"), tenant_nats_password(settings, "35")),
        inbox_prefix=tenant_inbox_prefix("35"),
    )
    yield session
    await session.nc.close()


async def _stream_messages(services_nc: Client) -> int:
    info = await services_nc.jetstream().stream_info(STREAM)
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


async def test_tenant_pulls_exactly_its_own_events(tenant_35: Session) -> None:
    js = tenant_35.nc.jetstream(timeout=2)
    sub = await js.pull_subscribe(
        f"{PREFIX}.registry.35.>",
        durable="t35-1",
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        inbox_prefix=f"{tenant_inbox_prefix('35')}.".encode(),
    )
    messages: list[Msg] = []
    while len(messages) < len(EVENTS_35):
        messages += await sub.fetch(len(EVENTS_35), timeout=2)
    for msg in messages:
        await msg.ack_sync(timeout=2)

    assert [m.subject for m in messages] == EVENTS_35
    info = await js.consumer_info(STREAM, "t35-1")
    assert info.num_pending == 0
    assert info.num_ack_pending == 0
    assert tenant_35.errors == []


async def test_tenant_may_filter_on_all_its_services(
    tenant_35: Session, settings: Settings
) -> None:
    # The filter `mpks nats-credentials` prints: every service's events of the province.
    creds = tenant_credentials(settings, "35")
    js = tenant_35.nc.jetstream(timeout=2)
    sub = await js.pull_subscribe(
        creds.filter_subject,
        durable=creds.consumer_names[1],
        stream=STREAM,
        inbox_prefix=f"{creds.inbox_prefix}.".encode(),
    )
    messages: list[Msg] = []
    while len(messages) < len(EVENTS_35):
        messages += await sub.fetch(len(EVENTS_35), timeout=2)
    assert [m.subject for m in messages] == EVENTS_35
    # Its own consumers it may also remove.
    assert await js.delete_consumer(STREAM, creds.consumer_names[1])


@pytest.mark.parametrize(
    "filter_subject",
    [f"{PREFIX}.registry.31.>", f"{PREFIX}.registry.>", f"{PREFIX}.>", f"{PREFIX}.registry.*.>"],
)
async def test_tenant_cannot_create_a_consumer_wider_than_its_events(
    tenant_35: Session, services_nc: Client, filter_subject: str
) -> None:
    js = tenant_35.nc.jetstream(timeout=TIMEOUT)
    await _refused(
        tenant_35,
        lambda: js.pull_subscribe(filter_subject, durable="t35-3", stream=STREAM),
    )
    with pytest.raises(nats.js.errors.NotFoundError):
        await services_nc.jetstream().consumer_info(STREAM, "t35-3")


async def test_create_request_must_carry_the_filter_its_subject_names(
    tenant_35: Session, services_nc: Client
) -> None:
    # The permission checks the filter in the subject; the server refuses a body that asks
    # for another one, or for several, or comes through the unfiltered create subjects.
    allowed = f"$JS.API.CONSUMER.CREATE.{STREAM}.t35-3.{PREFIX}.registry.35.>"
    for config in (
        {"name": "t35-3", "durable_name": "t35-3", "filter_subject": f"{PREFIX}.registry.>"},
        {
            "name": "t35-3",
            "durable_name": "t35-3",
            "filter_subjects": [f"{PREFIX}.registry.35.>", f"{PREFIX}.registry.31.>"],
        },
    ):
        body = json.dumps({"stream_name": STREAM, "config": config}).encode()
        reply = await tenant_35.nc.request(allowed, body, timeout=2)
        assert "error" in json.loads(reply.data)

    wide = json.dumps(
        {"stream_name": STREAM, "config": {"durable_name": "t35-3", "ack_policy": "explicit"}}
    ).encode()
    for subject in (
        f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.t35-3",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.t35-3",
        f"$JS.API.CONSUMER.CREATE.{STREAM}",
    ):
        await _refused(
            tenant_35,
            partial(tenant_35.nc.request, subject, wide, timeout=TIMEOUT),
        )
    with pytest.raises(nats.js.errors.NotFoundError):
        await services_nc.jetstream().consumer_info(STREAM, "t35-3")


async def test_tenant_cannot_use_consumers_that_are_not_its_own(
    tenant_35: Session, services_nc: Client
) -> None:
    # A consumer of the whole stream, as a service has, and one province 31 named.
    services_js = services_nc.jetstream()
    for name in ("cases-directory", "t31-1"):
        await services_js.add_consumer(
            STREAM, ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT)
        )
    js = tenant_35.nc.jetstream(timeout=TIMEOUT)
    # Its own filter under another province's name is refused too.
    await _refused(
        tenant_35,
        lambda: js.pull_subscribe(f"{PREFIX}.registry.35.>", durable="t31-2", stream=STREAM),
    )
    for name in ("cases-directory", "t31-1"):
        await _refused(tenant_35, partial(js.consumer_info, STREAM, name))
        sub = await js.pull_subscribe_bind(
            name, STREAM, inbox_prefix=f"{tenant_inbox_prefix('35')}.".encode()
        )
        await _refused(tenant_35, partial(sub.fetch, 1, timeout=TIMEOUT))
        await _refused(tenant_35, partial(js.delete_consumer, STREAM, name))
        info = await services_js.consumer_info(STREAM, name)
        assert info.delivered.stream_seq == 0


async def test_tenant_cannot_subscribe_to_event_subjects_or_other_inboxes(
    tenant_35: Session, services_nc: Client
) -> None:
    received: list[str] = []

    async def collect(msg: Msg) -> None:
        received.append(msg.subject)

    forbidden = [
        f"{PREFIX}.hr.31.>",
        f"{PREFIX}.>",
        f"{PREFIX}.hr.35.>",
        ">",
        "_INBOX.>",
        f"{tenant_inbox_prefix('31')}.>",
    ]
    for subject in forbidden:
        await tenant_35.nc.subscribe(subject, cb=collect)
    await _violations_reach(tenant_35, len(forbidden))

    # No stream holds `hr` subjects, so this reaches only core subscribers.
    for subject in (f"{PREFIX}.hr.31.worker.hired", f"{PREFIX}.hr.35.worker.hired", "_INBOX.x"):
        await services_nc.publish(subject, b"{}")
    await services_nc.flush()
    # Anything the server had delivered arrives before the answer to this ping.
    await tenant_35.nc.flush()
    assert received == []


async def test_tenant_cannot_publish_events(tenant_35: Session, services_nc: Client) -> None:
    before = await _stream_messages(services_nc)
    violations = len(tenant_35.violations())
    await tenant_35.nc.publish(f"{PREFIX}.registry.35.institution.registered", b"{}")
    await tenant_35.nc.publish(f"{PREFIX}.registry.31.institution.closed", b"{}")
    await _violations_reach(tenant_35, violations + 2)
    js = tenant_35.nc.jetstream(timeout=TIMEOUT)
    await _refused(tenant_35, lambda: js.publish(f"{PREFIX}.registry.35.institution.x", b"{}"))
    assert await _stream_messages(services_nc) == before


async def test_tenant_cannot_read_or_manage_the_stream(
    tenant_35: Session, services_nc: Client
) -> None:
    js = tenant_35.nc.jetstream(timeout=TIMEOUT)
    await _refused(tenant_35, lambda: js.get_msg(STREAM, 4))
    await _refused(tenant_35, lambda: js.get_msg(STREAM, 4, direct=True))
    await _refused(
        tenant_35,
        lambda: js.get_last_msg(STREAM, f"{PREFIX}.registry.31.institution.renamed"),
    )
    await _refused(tenant_35, lambda: js.stream_info(STREAM))
    await _refused(tenant_35, lambda: js.purge_stream(STREAM))
    await _refused(tenant_35, lambda: js.delete_stream(STREAM))
    assert await _stream_messages(services_nc) >= len(EVENTS_35 + EVENTS_31)


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
        nats_config_text=render_authorization(settings),
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
