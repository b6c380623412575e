"""The registry's reads at a province's scale: directory, search, accreditation and licence
registers, national counts.

    python -m bench.registry [--institutions 10000] [--per-tenant 100] [--reads 200]

Loads, through the registry's bus in process (commands run concurrently in chunks, so the
event store's group commit takes many per transaction), `--institutions` institutions into
province 35 and `--per-tenant` into each of the other 37, with accreditations for ~30% of
them (grades ~29% A, 59% B, 12% C: the shares of MPKS seed 003) decided at a spread of
dates within their validity, and an operating licence for half of them ending at a spread
of dates from half a year ago to three years ahead. The projections catch up, then
`mpks serve registry --role api` (uvicorn, its own process: no background work beside the
requests) answers, driven by the benchmark's lean client over real HTTP, one request at a
time. Each kind of read runs in rounds taking turns with the others, so load from other
work on the machine falls on all alike. The limits, measured in the same run: `GET` of one
institution by id (a route doing one indexed SELECT) and a `SELECT 1` round trip from this
process to PostgreSQL.

Uses the configured PostgreSQL (MPKS_DATABASE_URL) and NATS or starts embedded ones; creates
its own database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import msgspec

from bench.client import Connection
from bench.commands import _delete_streams, _free_port, _serve, _wait_up
from services.bootstrap import build_runtime
from services.registry.application.record_accreditation import RecordAccreditation
from services.registry.application.record_licence import RecordLicence
from services.registry.application.register_institution import RegisterInstitution
from services.registry.domain.accreditation import Grade, Scores
from services.registry.domain.institution import InstitutionType, Owner
from services.registry.domain.licence import LicenceKind
from shared.auth import Role, mint_dev_token
from shared.devstack.stack import DevStack
from shared.eventstore.context import CommandContext
from shared.runtime import ServiceRuntime
from shared.service_layer.commands import Accepted, Command
from shared.settings import Settings
from shared.tenancy import province_codes

HOT = "35"  # Jawa Timur: the province with the most institutions
HOT_PDM = "3578"  # Kota Surabaya: the PDM operator's
# Regencies (01-29) and cities (71-79) of Jawa Timur.
PDMS = [f"35{n:02d}" for n in range(1, 30)] + [f"35{n}" for n in range(71, 80)]
ACCREDITED_SHARE = 0.30
GRADES = [(Grade.A, 0.29), (Grade.B, 0.59), (Grade.C, 0.12)]
VALIDITY_YEARS = {Grade.A: 5, Grade.B: 3, Grade.C: 2}
LICENSED_SHARE = 0.5
PREFIXES = {
    InstitutionType.LKSA: "Panti Asuhan",
    InstitutionType.SENIOR_CARE: "Panti Wreda",
    InstitutionType.DISABILITY_CENTER: "Pusat Disabilitas",
    InstitutionType.RUMAH_SINGGAH: "Rumah Singgah",
    InstitutionType.RUMAH_SAKINAH: "Rumah Sakinah",
    InstitutionType.PSKM: "PSKM",
    InstitutionType.PAKM: "PAKM",
    InstitutionType.BAKESOS: "Bakesos",
}
# Places: made-up village names, as unevenly spread as real ones (the k-th in 1/k of the
# institutions' names), so the last is a rare word; "asuhan" (children's homes) is common.
SYLLABLES = ["ka", "ra", "di", "jo", "wo", "ngun", "sa", "ri", "ma", "lang", "gan", "tu"]
COMMON_WORD = "asuhan"
CHUNK = 64  # commands in flight at once


def _places(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize())
    return sorted(names)


def _context(tenant: str) -> CommandContext:
    return CommandContext(tenant=tenant, actor="bench", correlation_id=secrets.token_hex(8))


async def _run_all(runtime: ServiceRuntime, commands: Sequence[tuple[str, Command]]) -> list[Any]:
    """Run the commands concurrently in chunks: each's reply's record id, in order."""
    ids: list[Any] = []
    for start in range(0, len(commands), CHUNK):
        chunk = commands[start : start + CHUNK]
        outcomes = await asyncio.gather(
            *(runtime.bus.execute(command, _context(t)) for t, command in chunk)
        )
        ids.extend(msgspec.json.decode(o.reply, type=Accepted).id for o in outcomes)
    return ids


class Loaded(msgspec.Struct):
    counts: dict[str, int]
    institution_id: str  # one in province 35, for the limit's GET
    rare_word: str


async def _load(runtime: ServiceRuntime, hot: int, per_tenant: int) -> Loaded:
    rng = random.Random(3)  # noqa: S311 (a reproducible data set, not secrets)
    places = _places(rng, max(50, hot // 30))
    weights = [1 / rank for rank in range(1, len(places) + 1)]
    today = date.today()
    kinds = list(InstitutionType)
    registrations: list[tuple[str, Command]] = []
    for tenant in sorted(province_codes()):
        for n in range(hot if tenant == HOT else per_tenant):
            kind = rng.choice(kinds)
            owner = Owner.AISYIYAH if rng.random() < 0.2 else Owner.MUHAMMADIYAH
            place = rng.choices(places, weights)[0]
            pdm = rng.choice(PDMS) if tenant == HOT else f"{tenant}71"
            registrations.append(
                (
                    tenant,
                    RegisterInstitution(
                        name=f"{PREFIXES[kind]} {owner.name.title()} {place} {n}",
                        kind=kind,
                        owner=owner,
                        pdm=pdm,
                        address=f"Jl. {rng.choice(places)} No. {rng.randint(1, 200)}, {place}",
                    ),
                )
            )
    started = time.perf_counter()
    ids = await _run_all(runtime, registrations)
    took = {"institutions": len(ids)}
    print(f"  registered {len(ids)} institutions in {time.perf_counter() - started:.1f} s")

    decisions: list[tuple[str, Command]] = []
    licences: list[tuple[str, Command]] = []
    for number, ((tenant, _), institution_id) in enumerate(zip(registrations, ids, strict=True)):
        if rng.random() < ACCREDITED_SHARE:
            grade = rng.choices([g for g, _ in GRADES], [w for _, w in GRADES])[0]
            # Decided within its validity, so every decision is still in force.
            decided = today - timedelta(days=rng.randrange(VALIDITY_YEARS[grade] * 365 - 1))
            score = {Grade.A: 88, Grade.B: 75, Grade.C: 62}[grade] + rng.randint(-4, 4)
            decisions.append(
                (
                    tenant,
                    RecordAccreditation(
                        institution_id=institution_id,
                        grade=grade,
                        scores=Scores(
                            programme=score,
                            human_resources=score - 2,
                            management=score + 1,
                            facilities=score - 3,
                            service_results=score,
                        ),
                        decided_on=decided,
                        regulation="Permensos 8/2025",
                        certificate_number=f"{number}/BAN-PS/LKS/{tenant}/{decided.year}",
                    ),
                )
            )
        if rng.random() < LICENSED_SHARE:
            until = today + timedelta(days=rng.randint(-180, 3 * 365))
            licences.append(
                (
                    tenant,
                    RecordLicence(
                        institution_id=institution_id,
                        kind=LicenceKind.OPERATING,
                        number=f"503/{number}/IO/{tenant}",
                        issuer="Dinas Sosial Provinsi",
                        issued_on=until - timedelta(days=5 * 365),
                        valid_until=until,
                    ),
                )
            )
    started = time.perf_counter()
    took["accreditations"] = len(await _run_all(runtime, decisions))
    took["licences"] = len(await _run_all(runtime, licences))
    print(
        f"  recorded {took['accreditations']} accreditations and {took['licences']} licences "
        f"in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    await runtime.projections.catch_up()
    print(f"  projections caught up in {time.perf_counter() - started:.1f} s")
    first_hot = next(i for (t, _), i in zip(registrations, ids, strict=True) if t == HOT)
    return Loaded(took, str(first_hot), places[-1].lower())


Read = Callable[[], Awaitable[object]]


async def _timed(kinds: dict[str, Read], reads: int, rounds: int = 10) -> dict[str, list[float]]:
    """`reads` of each kind, in `rounds` rounds taking turns: latencies in ms, by kind."""
    took: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind, read in kinds.items():
            for _ in range(reads // rounds):
                start = time.perf_counter()
                await read()
                took[kind].append((time.perf_counter() - start) * 1000)
    return took


def _p50_p99(took: list[float]) -> tuple[float, float]:
    return statistics.median(took), statistics.quantiles(took, n=100)[98]


async def _measure(
    port: int, settings: Settings, db_url: str, institution_id: str, rare_word: str, reads: int
) -> dict[str, list[float]]:
    def token(tenant: str, role: Role, pdm: str | None = None) -> dict[str, str]:
        minted = mint_dev_token(settings, sub="bench", tenant=tenant, roles=[role], pdm=pdm)
        return {"Authorization": f"Bearer {minted}"}

    admin, operator = token(HOT, Role.WILAYAH_ADMIN), token(HOT, Role.PDM_OPERATOR, HOT_PDM)
    national = token("national", Role.NATIONAL_ADMIN)
    http = await Connection.open("127.0.0.1", port)
    conn = await asyncpg.connect(db_url)
    base = f"/v1/tenants/{HOT}"

    def get(path: str, headers: dict[str, str]) -> Read:
        async def read() -> object:
            reply = await http.request("GET", path, b"", headers)
            if reply.status != 200:
                raise RuntimeError(f"GET {path}: {reply.status} {reply.body[:300]!r}")
            return reply

        return read

    async def select_one() -> object:
        return await conn.fetchval("SELECT 1")

    kinds: dict[str, Read] = {
        "limit: SELECT 1 round trip": select_one,
        "limit: GET one institution": get(f"{base}/institutions/{institution_id}", admin),
        "directory page, wilayah_admin": get(f"{base}/institutions?limit=100", admin),
        "directory page, pdm_operator": get(f"{base}/institutions?limit=100", operator),
        f"search common word ({COMMON_WORD})": get(
            f"{base}/institutions?limit=100&q={COMMON_WORD}", admin
        ),
        f"search rare word ({rare_word})": get(
            f"{base}/institutions?limit=100&q={rare_word}", admin
        ),
        "accreditation counts (35)": get(f"{base}/accreditations/counts", admin),
        "national counts (38 prov.)": get("/v1/national/accreditations/counts", national),
        "accreditations expiring 90d": get(f"{base}/accreditations?expiring_within=90", admin),
        "licences expiring 30d": get(f"{base}/licences?expiring_within=30", admin),
    }
    try:
        await _timed(kinds, reads=5, rounds=1)  # warm up connections and statement caches
        return await _timed(kinds, reads)
    finally:
        await http.close()
        await conn.close()


async def run(hot: int, per_tenant: int, reads: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mpks-bench-registry-"))
    env_db = os.environ.get("MPKS_DATABASE_URL") or None
    env_nats = os.environ.get("MPKS_NATS_URL") or None
    with DevStack(workdir, env_db, env_nats, pg_port=_free_port(), nats_port=_free_port()) as stack:
        database = f"mpks_bench_{secrets.token_hex(3)}"
        admin = await asyncpg.connect(stack.database_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        db_url = urlunparse(urlparse(stack.database_url)._replace(path=f"/{database}"))
        settings = Settings(
            database_url=db_url,
            nats_url=stack.nats_url,
            nats_prefix=f"mpksbench{secrets.token_hex(2)}",
        )
        server: subprocess.Popen[bytes] | None = None
        try:
            print(f"loading: {hot} institutions in {HOT}, {per_tenant} in each other province")
            runtime = build_runtime("registry", settings, run_background=False)
            await runtime.start()
            try:
                loaded = await _load(runtime, hot, per_tenant)
                # Statistics as autovacuum would soon have them (as the tables' owner: the
                # service's login owns nothing): with none, the planner takes the freshly
                # filled tables for empty, e.g. a nested loop over the whole register for
                # the counts (8 ms at only 300 institutions).
                owner = await asyncpg.connect(db_url)
                await owner.execute("ANALYZE")
                await owner.close()
            finally:
                await runtime.stop()
            port = _free_port()
            server = _serve(
                ["mpks.main", "serve", "registry", "--role", "api"],
                {
                    **os.environ,
                    "MPKS_DATABASE_URL": db_url,
                    "MPKS_NATS_URL": stack.nats_url,
                    "MPKS_NATS_PREFIX": settings.nats_prefix,
                    "MPKS_REGISTRY_URL": f"http://127.0.0.1:{port}",
                    "MPKS_LOG_LEVEL": "WARNING",
                },
            )
            await _wait_up(f"http://127.0.0.1:{port}/health/live", server)
            took = await _measure(
                port, settings, db_url, loaded.institution_id, loaded.rare_word, reads
            )
            counts = loaded.counts
            load = os.getloadavg()
            print(
                f"\nregistry reads over HTTP (uvicorn, `--role api`, one request at a time, "
                f"{reads} each, in rounds): {counts['institutions']} institutions "
                f"({hot} in {HOT}), {counts['accreditations']} accreditations, "
                f"{counts['licences']} licences"
            )
            print(
                f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} "
                f"/ {load[2]:.1f} (shared with other work: compare with the limits)"
            )
            (limit_p50, limit_p99) = _p50_p99(took["limit: GET one institution"])
            for kind, latencies in took.items():
                p50, p99 = _p50_p99(latencies)
                print(
                    f"  {kind:<34} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   "
                    f"(GET by id x{p50 / limit_p50:5.1f} / x{p99 / limit_p99:5.1f})"
                )
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            await _delete_streams(stack.nats_url, settings.nats_prefix)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--institutions", type=int, default=10_000, help="in province 35")
    parser.add_argument("--per-tenant", type=int, default=100, help="in each other province")
    parser.add_argument("--reads", type=int, default=200, help="of each kind")
    args = parser.parse_args()
    asyncio.run(run(args.institutions, args.per_tenant, args.reads))


if __name__ == "__main__":
    main()
