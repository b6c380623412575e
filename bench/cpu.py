"""CPU time (user + system) of processes, from /proc (Linux): a server's process tree, and the
PostgreSQL server's processes that work for the benchmark's database."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds), None once the process is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: the fields start after its closing ")".
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of every core since boot, from /proc/stat; None without it.
    Idle and I/O wait count as not busy; steal (time the hypervisor gave another guest)
    counts as busy: the machine could not have used it either."""
    try:
        first = (_PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in first[1:9]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def busy_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all cores' time that was busy between two `machine_jiffies`."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of a process and its descendants; None without /proc."""
    if not _PROC.exists():
        return None
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], times[int(entry.name)] = stat[1], stat[2]
    tree = {pid}
    grew = True
    while grew:
        grown = {p for p, parent in parents.items() if parent in tree} | tree
        grew, tree = grown != tree, grown
    return sum(times.get(p, 0.0) for p in tree)


class PostgresCpu:
    """CPU time of the PostgreSQL processes serving one database: its backends (the services'
    connections, autovacuum) and the server's shared ones (WAL writer, checkpointer, …, which
    anything else on the server also uses). Not the probes' own connections (`ignored`).

    Only when the server runs on this machine (its backends are in our /proc); a backend that
    exits during a run takes its time with it (the services' pools keep theirs open).
    """

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url = admin_url
        self.database = database
        self.ignored: set[int] = set()
        self.labels: dict[int, str] = {}

    async def available(self) -> bool:
        conn = await asyncpg.connect(self.admin_url)
        try:
            # Looked up while the backend lives. The same pid in another pid namespace (a
            # container, another host) would be some other process here.
            stat = _stat(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()
        return stat is not None and stat[0].startswith("postgres")

    async def snapshot(self) -> dict[int, float]:
        conn = await asyncpg.connect(self.admin_url)
        try:
            rows = await conn.fetch(
                """SELECT pid, coalesce(nullif(application_name, ''), backend_type) AS label
                   FROM pg_stat_activity
                   WHERE (datname IS NULL OR datname = $1) AND pid <> pg_backend_pid()""",
                self.database,
            )
        finally:
            await conn.close()
        times: dict[int, float] = {}
        for row in rows:
            pid = int(row["pid"])
            if pid not in self.ignored and (stat := _stat(pid)) is not None:
                times[pid] = stat[2]
                # Who the backend works for: a pool's application_name (`mpks-registry`,
                # `mpks-registry-commands`), else what PostgreSQL runs it as (walwriter…).
                self.labels[pid] = str(row["label"])
        return times

    def spent_by_label(self, before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
        """`spent`, per label of the processes (see `snapshot`)."""
        by: dict[str, float] = {}
        for pid, seconds in after.items():
            label = self.labels.get(pid, "?")
            by[label] = by.get(label, 0.0) + seconds - before.get(pid, 0.0)
        return by

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds between two snapshots; a process born in between counts from zero."""
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
