"""`mpks audit export`: a tenant's events across every service, as the documented NDJSON
(`shared.audit.export`), read with the owner's login, into a file or stdout, with a progress
bar on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import ExitStack
from datetime import datetime
from typing import IO

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.bootstrap import SERVICES
from shared.audit.export import Cursor, ExportError, parse_until, read_export
from shared.eventstore.stores import events_table, tenant_schema
from shared.settings import Settings
from shared.tenancy import province_codes


def add_export_parser(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = audit.add_parser(
        "export",
        help="a tenant's events of every service as NDJSON (format in the README)",
        description=__doc__,
    )
    export.add_argument("--tenant", required=True, help="2-digit province code")
    export.add_argument(
        "--service",
        action="append",
        choices=list(SERVICES),
        help="only this service (repeatable; default: every service, in this order: "
        f"{', '.join(SERVICES)})",
    )
    export.add_argument(
        "--from",
        dest="after",
        metavar="CURSOR",
        help="resume after these positions, e.g. registry:120,cases:55 (the `next_from` of "
        "an earlier export's end line); a service it does not name starts at 0",
    )
    export.add_argument(
        "--until",
        metavar="DATE",
        help="cut each log before its first event that occurred after this date "
        "(2026-12-31: the end of that day, UTC) or date-time (2026-12-31T17:00:00+07:00)",
    )
    export.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from mpks.up import one_off_database

    services = args.service or list(SERVICES)
    try:
        if args.tenant not in province_codes():
            raise ExportError("tenant", f"unknown tenant {args.tenant!r}")
        cursor = Cursor.parse(args.after, [s for s in SERVICES if s in services])
        until = parse_until(args.until)
    except ExportError as exc:
        print(f"mpks audit export: --{exc.field}: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        out: IO[bytes] = (
            stack.enter_context(open(args.out, "wb")) if args.out else sys.stdout.buffer
        )
        database_url = stack.enter_context(one_off_database(settings))
        events = asyncio.run(_export(database_url, args.tenant, cursor, until, out, args.quiet))
    print(f"mpks audit export: {events:,} events of tenant {args.tenant}", file=sys.stderr)
    return 0


async def _export(
    database_url: str,
    tenant: str,
    cursor: Cursor,
    until: datetime | None,
    out: IO[bytes],
    quiet: bool,
) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        expected = 0
        for service, after in cursor.after.items():
            table = f"{tenant_schema(service, tenant)}.{events_table(service)}"
            expected += await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE notification_id > $1", after
            )
        progress = Progress(
            TextColumn("export {task.fields[tenant]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=quiet,
        )
        lines = 0
        with progress:
            task = progress.add_task("export", total=expected, tenant=tenant)
            async for chunk in read_export(
                dict.fromkeys(cursor.after, conn), tenant, cursor, until
            ):
                out.write(chunk)
                lines += chunk.count(b"\n")
                progress.update(task, completed=max(lines - 1, 0))
        out.flush()
        # Less the header and end lines.
        return lines - 2
    finally:
        await conn.close()
