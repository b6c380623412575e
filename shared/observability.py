"""Structured JSON logs carrying the correlation id, and Prometheus metrics per service."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mpks_correlation_id", default=None
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry).decode()


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Litestar and uvicorn access logs would duplicate our request log line.
    logging.getLogger("uvicorn.access").disabled = True


def new_correlation_id() -> str:
    return uuid4().hex


class Metrics:
    """One registry per service instance: nothing global, nothing created at import."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mpks_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mpks_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "mpks_projection_lag_events",
            "Events committed but not yet in the read model",
            ["projection"],
            registry=self.registry,
        )
        self.relay_lag = Gauge(
            "mpks_relay_lag_events",
            "Events committed but not yet published to NATS",
            registry=self.registry,
        )
        self.consumer_parked = Gauge(
            "mpks_consumer_parked_messages",
            "Poison messages parked by a consumer",
            ["consumer"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "mpks_consumer_lag_events",
            "Events the source service holds that a consumer has not applied",
            ["consumer"],
            registry=self.registry,
        )
        self.stalled = Gauge(
            "mpks_stalled_tenants",
            "Tenants a follower (projection, consumer) is stopped at, unable to apply an event",
            ["follower"],
            registry=self.registry,
        )
        self.deadlines_overdue = Gauge(
            "mpks_deadlines_overdue",
            "Deadlines still pending two scheduler polls after they fell due, never refused",
            registry=self.registry,
        )
        self.deadlines_refused = Gauge(
            "mpks_deadlines_refused",
            "Deadlines whose command was refused, kept with the reason and retried",
            registry=self.registry,
        )
        self.restarts = Counter(
            "mpks_background_restarts",
            "Background tasks restarted after a crash",
            ["task"],
            registry=self.registry,
        )
        self.service = service


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
