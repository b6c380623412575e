"""`mpks audit export`: a tenant's events across every service, as the documented NDJSON
(`shared.audit.export`), read with the owner's login, into a file or stdout, with a progress
bar on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import ExitStack
from datetime import datetime
from typing import IO, TYPE_CHECKING

from services.bootstrap import SERVICES
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.audit.export import Cursor


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
    # Imported here: `mpks` builds every command's parser, and only this one needs them.
    from shared.audit.export import Cursor, ExportError, parse_until
    from shared.tenancy import province_codes

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
        if settings.database_url is not None:
            # What `one_off_database` answers first, without importing `mpks.up` (which
            # brings the services: most of a second).
            database_url = settings.database_url
        else:
            from mpks.up import one_off_database

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
    import asyncpg
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from shared.audit.export import Totals, log_heads, read_export

    conn = await asyncpg.connect(database_url)
    try:
        # The bar runs over positions, from where the export starts to each log's head (an
        # index lookup, where counting the events would read every log once more before the
        # export reads it): a log's positions have gaps, so it measures how far the export
        # is through the logs, and it ends full unless `--until` cuts the logs before.
        heads = await log_heads(conn, tenant, cursor)
        total = sum(max(heads[s] - after, 0) for s, after in cursor.after.items())
        progress = Progress(
            TextColumn("export {task.fields[tenant]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% of the positions"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=quiet,
        )
        totals = Totals(tenant, cursor)
        with progress:
            task = progress.add_task("export", total=total or 1, tenant=tenant)
            async for chunk in read_export(
                dict.fromkeys(cursor.after, conn), tenant, cursor, until, totals
            ):
                out.write(chunk)
                done = sum(totals.last[s] - after for s, after in cursor.after.items())
                # Events appended since the heads were read push the end further.
                total = max(total, done)
                progress.update(task, completed=done, total=total or 1)
        out.flush()
        return sum(totals.events.values())
    finally:
        await conn.close()
