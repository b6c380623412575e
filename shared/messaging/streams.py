"""One JetStream stream per service, holding every event that service publishes."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

DUPLICATE_WINDOW_SECONDS = 120.0


def stream_name(service: str) -> str:
    return f"MPKS_{service.upper()}"


async def ensure_stream(js: JetStreamContext, service: str) -> None:
    name = stream_name(service)
    config = StreamConfig(
        name=name,
        subjects=[f"mpks.{service}.>"],
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
