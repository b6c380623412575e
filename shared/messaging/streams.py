"""Subject and stream names, and one JetStream stream per service holding all its events.

Subjects are `<prefix>.<service>.<tenant>.<aggregate>.<event>`: the tenant is a subject token,
so NATS permissions can confine a province's consumers to its own events. The prefix is
`mpks` unless configured (tests use their own, so runs never share a stream).
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.eventstore.envelope import EventEnvelope

DUPLICATE_WINDOW_SECONDS = 120.0


@dataclass(frozen=True)
class Subjects:
    prefix: str = "mpks"

    def of(self, event: EventEnvelope) -> str:
        return (
            f"{self.prefix}.{event.service}.{event.tenant}."
            f"{event.aggregate.lower()}.{event.event.lower()}"
        )

    def of_service(self, service: str) -> str:
        return f"{self.prefix}.{service}.>"

    def of_tenant(self, service: str, tenant: str) -> str:
        return f"{self.prefix}.{service}.{tenant}.>"

    def stream(self, service: str) -> str:
        return f"{self.prefix.upper()}_{service.upper()}"


async def ensure_stream(js: JetStreamContext, subjects: Subjects, service: str) -> None:
    name = subjects.stream(service)
    config = StreamConfig(
        name=name,
        subjects=[subjects.of_service(service)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)
