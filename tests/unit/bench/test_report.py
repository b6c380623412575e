"""The benchmark's pure parts: the percentiles it prints and the JSON it saves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.cpu import PostgresCpu, busy_fraction, machine_jiffies
from bench.report import REPORT_VERSION, Lags, Run, percentile, ratios, report


def _run(scenario: str, clients: int, count: int, seconds: float = 2.0) -> Run:
    return Run(
        scenario=scenario,
        clients=clients,
        tenants=38 if scenario != "raw-insert" else 0,
        seconds=seconds,
        latencies=[0.001 * (i + 1) for i in range(count)],
        errors=1,
        replayed=0,
        server_cpu_seconds=0.5,
        postgres_cpu_seconds=None,
    )


def test_percentiles_are_measured_values_by_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 99) == 5.0
    assert percentile(values, 20) == 1.0
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([7.0], 99) == 7.0


def test_a_percentile_of_nothing_is_nan_and_out_of_range_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)


def test_a_run_reports_rate_latency_and_cpu_per_request() -> None:
    run = _run("commands", 16, count=100)
    figures = run.as_json()
    assert figures["requests"] == 100
    assert figures["rate"] == 50.0
    assert figures["p50_ms"] == 50.0
    assert figures["p99_ms"] == 99.0
    assert figures["server_cpu_ms_per_request"] == 5.0
    assert figures["postgres_cpu_ms_per_request"] is None
    assert figures["errors"] == 1


def test_the_machine_busy_share_counts_every_core_and_steal_as_busy() -> None:
    assert busy_fraction((100, 400), (250, 600)) == 0.75
    assert busy_fraction(None, (250, 600)) is None
    assert busy_fraction((100, 400), (100, 400)) is None
    if Path("/proc/stat").exists():
        busy, total = machine_jiffies() or (0, 0)
        assert 0 < busy < total


def test_the_ratio_pairs_commands_with_raw_inserts_at_the_same_client_count() -> None:
    runs = [
        _run("commands", 1, 10),
        _run("raw-insert", 1, 40),
        _run("commands", 16, 30),
        _run("raw-insert", 16, 60),
        _run("hot-tenant", 16, 5),
        _run("commands", 64, 30),
    ]
    assert ratios(runs) == {"1": 0.25, "16": 0.5}


def test_the_saved_report_is_plain_json_with_every_figure() -> None:
    runs = [_run("commands", 16, 0), _run("raw-insert", 16, 10)]
    saved = report(
        started_at="2026-01-01T00:00:00+00:00",
        environment={"cores": 2, "seconds_per_run": 2.0},
        runs=runs,
        lags=[Lags("projection", [0.01, 0.02], missing=0), Lags("cross-service", [], missing=3)],
        lag_method="polled",
        peak_connections=12,
    )
    # Nothing measured is null, never NaN (which is not JSON).
    text = json.dumps(saved, allow_nan=False)
    assert json.loads(text) == saved
    assert saved["version"] == REPORT_VERSION
    assert [r["scenario"] for r in saved["runs"]] == ["commands", "raw-insert"]
    assert saved["runs"][0]["p99_ms"] is None
    assert saved["ratios"] == {"16": 0.0}
    assert saved["lag"]["method"] == "polled"
    assert saved["lag"]["projection"] == {
        "samples": 2,
        "missing": 0,
        "p50_ms": 10.0,
        "p99_ms": 20.0,
        "max_ms": 20.0,
    }
    assert saved["lag"]["cross-service"]["missing"] == 3
    assert saved["lag"]["cross-service"]["p50_ms"] is None


def test_postgres_cpu_counts_a_process_born_during_the_run_from_zero() -> None:
    assert PostgresCpu.spent({1: 2.0, 2: 1.0}, {1: 2.5, 3: 0.25}) == 0.75


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    chart = pytest.importorskip("bench.chart", reason="the bench group is not installed")
    saved = report(
        started_at="2026-01-01T00:00:00+00:00",
        environment={"cores": 2, "seconds_per_run": 2.0},
        runs=[_run(s, c, 10) for s in ("commands", "raw-insert") for c in (1, 16, 64)],
        lags=[],
        lag_method="polled",
        peak_connections=0,
    )
    path = tmp_path / "chart.png"
    chart.draw(saved, path)
    assert path.read_bytes().startswith(b"\x89PNG")
