"""The benchmark's figures and the JSON it saves: pure functions over what the runs measured."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Bumped when a field of the saved JSON changes meaning or goes away (adding one does not).
REPORT_VERSION = 1


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least p % of the values at or
    below it (a value that was measured, never an interpolation); NaN for no values."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


@dataclass(frozen=True)
class Run:
    """One scenario: `clients` connections sending requests for `seconds`."""

    scenario: str  # "commands", "raw-insert", "hot-tenant" or "commands+lag"
    clients: int
    tenants: int
    seconds: float
    latencies: Sequence[float]  # seconds, successful requests only
    errors: int
    replayed: int  # answers replayed from an earlier command: must be 0 in an honest run
    server_cpu_seconds: float | None  # the server's process tree, background work included
    postgres_cpu_seconds: float | None
    # While the clients sent: the share of all the machine's cores that was busy (whoever
    # used it), and the CPU the benchmark's own process (the load) spent.
    machine_busy: float | None = None
    client_cpu_seconds: float | None = None
    # PostgreSQL's CPU by the application_name of its connections (see bench.cpu).
    postgres_cpu_by_connection: Mapping[str, float] | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else math.nan

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    def per_request_ms(self, cpu_seconds: float | None) -> float | None:
        if cpu_seconds is None or not self.count:
            return None
        return round(cpu_seconds * 1000 / self.count, 3)

    def postgres_cpu_ms_by_connection(self) -> dict[str, float]:
        shares = self.postgres_cpu_by_connection or {}
        return {
            label: ms
            for label, seconds in sorted(shares.items())
            if (ms := self.per_request_ms(seconds)) is not None
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "clients": self.clients,
            "tenants": self.tenants,
            "seconds": round(self.seconds, 3),
            "requests": self.count,
            "errors": self.errors,
            "replayed": self.replayed,
            "rate": _finite(self.rate),
            "p50_ms": _finite(self.p50_ms),
            "p99_ms": _finite(self.p99_ms),
            "server_cpu_ms_per_request": self.per_request_ms(self.server_cpu_seconds),
            "postgres_cpu_ms_per_request": self.per_request_ms(self.postgres_cpu_seconds),
            "postgres_cpu_ms_per_request_by_connection": self.postgres_cpu_ms_by_connection(),
            "client_cpu_ms_per_request": self.per_request_ms(self.client_cpu_seconds),
            "machine_busy": None if self.machine_busy is None else round(self.machine_busy, 3),
        }


@dataclass(frozen=True)
class Lags:
    """How long after a command's answer its effect was visible in a read model."""

    name: str  # "projection" or "cross-service"
    seconds: Sequence[float]
    missing: int  # sampled commands never seen within the wait

    def as_json(self) -> dict[str, Any]:
        return {
            "samples": len(self.seconds),
            "missing": self.missing,
            "p50_ms": _finite(percentile(self.seconds, 50) * 1000),
            "p99_ms": _finite(percentile(self.seconds, 99) * 1000),
            "max_ms": _finite(max(self.seconds) * 1000) if self.seconds else None,
        }


def ratios(runs: Sequence[Run]) -> dict[str, float | None]:
    """Commands/s over raw INSERTs/s at each client count both were run at."""
    raw = {r.clients: r.rate for r in runs if r.scenario == "raw-insert"}
    return {
        str(r.clients): _finite(r.rate / raw[r.clients]) if raw.get(r.clients) else None
        for r in runs
        if r.scenario == "commands" and r.clients in raw
    }


def report(
    *,
    started_at: str,
    environment: dict[str, Any],
    runs: Sequence[Run],
    lags: Sequence[Lags],
    lag_method: str,
    peak_connections: int,
) -> dict[str, Any]:
    """The saved result: one object, plain JSON types, NaN written as null."""
    return {
        "version": REPORT_VERSION,
        "started_at": started_at,
        "environment": environment,
        "runs": [r.as_json() for r in runs],
        "ratios": ratios(runs),
        "lag": {"method": lag_method, **{lag.name: lag.as_json() for lag in lags}},
        "peak_connections": peak_connections,
    }


def _finite(value: float) -> float | None:
    # JSON has no NaN: a figure with nothing measured is null.
    return None if math.isnan(value) else round(value, 3)
