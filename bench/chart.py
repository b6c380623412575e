"""The saved result drawn as a PNG: throughput and p99 against clients, commands next to the
raw INSERT endpoint (the hot tenant as a single point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

# No display: render straight to a file.
matplotlib.use("Agg")
import matplotlib.pyplot as plt

_SERIES = {
    "commands": ("commands (38 tenants)", "o-"),
    "raw-insert": ("raw INSERT", "s--"),
    "hot-tenant": ("commands (one hot tenant)", "^"),
}


def draw(result: dict[str, Any], path: Path) -> None:
    fig, (rate_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    clients: set[int] = set()
    for scenario, (label, style) in _SERIES.items():
        runs = sorted(
            (r for r in result["runs"] if r["scenario"] == scenario and r["rate"] is not None),
            key=lambda r: r["clients"],
        )
        if not runs:
            continue
        xs = [r["clients"] for r in runs]
        clients.update(xs)
        rate_ax.plot(xs, [r["rate"] for r in runs], style, label=label)
        p99_ax.plot(xs, [_number(r["p99_ms"]) for r in runs], style, label=label)
    env = result["environment"]
    for ax, title, unit in (
        (rate_ax, "Throughput", "requests/s"),
        (p99_ax, "p99 latency", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(clients), [str(c) for c in sorted(clients)])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"MPKS benchmark {result['started_at']} — {env['cores']} cores, "
        f"{env['seconds_per_run']:g} s per run"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _number(value: float | None) -> float:
    # Null (nothing measured) leaves a gap in the line.
    return float("nan") if value is None else value
