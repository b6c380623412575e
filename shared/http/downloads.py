"""Downloads of a read model's list as CSV or XLSX: the rows a list route shows (same
filters, same scope, same `as_of`), every one of them, for a spreadsheet.

A service declares the columns once (`Column`: a field of the view and its header in both
languages) and gets its two routes from `download_routes` (`GET …/<list>.csv` and
`GET …/<list>.xlsx`), given the query of every row and the filters Struct its list takes
(`shared.projections.listing`): same query parameters, `as_of` and the province's day it
implies (`shared.http.as_of.day_of`), the reader's scope. The headers and the values
of enums with a label catalogue (`shared.domain.labels`) are in the caller's language
(`Accept-Language`, as problem details), so a PDM office gets "Jenis: Lembaga
Kesejahteraan Sosial Anak (LKSA)" and a developer "Type: Children's home (LKSA)".

CSV: UTF-8 with a byte-order mark and `;` between fields, CRLF lines (RFC 4180 quoting).
Excel guesses a CSV's encoding from the BOM (without it, "José" turns to mojibake)
and splits fields on the system's list separator, which is `;` wherever the decimal mark is
a comma, as in Indonesia's regional settings: a `,` file opens as one column there. (The
`sep=;` hint line would make Excel ignore the BOM.) LibreOffice, Google Sheets and pandas
(`sep=";"`) read it as well. It streams: rows go out as the cursor reads them.

XLSX (openpyxl's write-only mode, constant memory): a zip's directory comes after its
entries, so the file is assembled on disk as the rows arrive and then streamed; dates stay
RFC 3339 text with their offset (Excel has no time zones).

Cells that start with `=`, `+`, `-` or `@` are never formulas: a CSV cell gets a leading
`'` (OWASP's advice against CSV injection) and an XLSX cell is written as text.

Reads are access-logged like the list (`shared.http.access`): an auditor's download is
recorded before its first byte. A view whose rows can be restricted is refused here: its
entry would have to name rows the stream has not read yet.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any, Protocol, TypeVar, get_args, get_type_hints
from urllib.parse import quote

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Stream
from litestar.types import Guard
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from shared.db.pool import DbConnection, DbPool
from shared.domain.labels import Label, catalogue_of
from shared.domain.organisation import Scope
from shared.http.as_of import AsOf, day_of, moment
from shared.http.language import Language, negotiate
from shared.http.reads import scoped_transaction
from shared.http.security import READERS, requires_roles
from shared.projections.listing import filter_parameters
from shared.runtime import ServiceRuntime

F = TypeVar("F", bound=msgspec.Struct)
F_contra = TypeVar("F_contra", bound=msgspec.Struct, contravariant=True)

# Litestar adds `; charset=utf-8` to text types.
CSV_MEDIA_TYPE = "text/csv"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_DELIMITER = ";"
_BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 64 * 1024
# Rows per chunk of CSV sent (and per batch of XLSX work between two awaits).
_BATCH = 500
# Who downloads a list by default: whoever reads it (each within their scope).
_READING = requires_roles(*READERS)


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class Column:
    """One column: the view's `field` under the header `label`."""

    field: str
    label: Label


# What a cell holds: text, or a number the spreadsheet can add up.
Cell = str | int | float


def _enum_of(view: type[msgspec.Struct], field: str) -> type[Enum] | None:
    hint = get_type_hints(view)[field]
    for candidate in (hint, *get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    return None


class Table:
    """How the rows of `view` become cells, in a language."""

    def __init__(self, view: type[msgspec.Struct], columns: Sequence[Column]) -> None:
        if "restricted" in view.__struct_fields__:
            raise TypeError(
                f"{view.__name__} rows can be restricted: a streamed download cannot record "
                "which ones it shows before it shows them"
            )
        unknown = [c.field for c in columns if c.field not in view.__struct_fields__]
        if unknown:
            raise ValueError(f"{view.__name__} has no fields {unknown}")
        self.columns = list(columns)
        self._enums = {c.field: _enum_of(view, c.field) for c in columns}

    def headers(self, language: Language) -> list[str]:
        return [c.label.in_language(language) for c in self.columns]

    def cells(self, row: Any, language: Language) -> list[Cell]:
        return [self._cell(c.field, getattr(row, c.field), language) for c in self.columns]

    def _cell(self, field: str, value: object, language: Language) -> Cell:
        if value is None:
            return ""
        enum = self._enums[field]
        catalogue = None if enum is None else catalogue_of(enum)
        if catalogue is not None:
            return catalogue.labels[str(getattr(value, "value", value))].in_language(language)
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Enum):
            return str(value.value)
        if isinstance(value, int | float):
            return value
        return str(value)


def _defused(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_START) else text


async def _csv(rows: AsyncIterator[Any], table: Table, language: Language) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    buffer.write(_BOM)
    writer.writerow(table.headers(language))
    count = 0
    async for row in rows:
        writer.writerow(
            [_defused(c) if isinstance(c, str) else c for c in table.cells(row, language)]
        )
        count += 1
        if count % _BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def _xlsx(
    rows: AsyncIterator[Any], table: Table, language: Language, title: str
) -> AsyncIterator[bytes]:
    workbook = Workbook(write_only=True)
    sheet: WriteOnlyWorksheet = workbook.create_sheet(title[:31])
    sheet.append(table.headers(language))
    count = 0
    async for row in rows:
        cells = []
        for value in table.cells(row, language):
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                # openpyxl takes a string starting with "=" for a formula.
                cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
        count += 1
        if count % _BATCH == 0:
            # Let other requests run between batches of this one's CPU work.
            await asyncio.sleep(0)
    with tempfile.TemporaryFile() as file:
        # Zipping is CPU and disk work of a second or so for thousands of rows: off the loop.
        await asyncio.to_thread(workbook.save, file)
        await asyncio.to_thread(file.seek, 0)
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk


def _disposition(filename: str) -> str:
    """RFC 6266: an ASCII name for old clients and the UTF-8 one (RFC 8187)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


# What each format is sent as, and how its description in the API documents begins.
_MEDIA_TYPES = {Format.CSV: CSV_MEDIA_TYPE, Format.XLSX: XLSX_MEDIA_TYPE}
_AS = {
    Format.CSV: (
        "a CSV file",
        "CSV: UTF-8 with BOM, `;` between fields (as Excel opens it in Indonesia)",
    ),
    Format.XLSX: ("an XLSX workbook", "an Excel workbook"),
}


class ListRows(Protocol[F_contra]):
    """Every row of a list for its `filters`, now or as of a moment; `day`: the province's
    day the list is of (what a value changing with the days, a licence's state, is of);
    `scope`: the reader's, which row-level security enforces in any case (a list may also
    name it in its query, where an index answers it)."""

    def __call__(
        self,
        conn: DbConnection,
        filters: F_contra,
        /,
        *,
        as_of: datetime | None,
        day: date,
        scope: Scope,
    ) -> AsyncIterator[Any]: ...


def download_routes(
    path: str,
    *,
    filters: type[F],
    rows: ListRows[F],
    table: Table,
    name: Label,
    what: str,
    operation: str,
    guards: Sequence[Guard] = (_READING,),
) -> tuple[HTTPRouteHandler, HTTPRouteHandler]:
    """`GET <path>.csv` and `GET <path>.xlsx`, for a controller under
    `/v1/tenants/{tenant}`: every row `rows` yields for the list's `filters` (the query
    parameters of its Struct) and `as_of`, in the tenant's transaction narrowed to the
    caller's scope, as a file named `<name>-<tenant>.<format>` in the caller's language.
    `what` begins the summary ("The institutions list"); `operation` names the handlers
    (`<operation>_csv`), and with them the operation ids clients are generated with."""

    def route_for(fmt: Format) -> HTTPRouteHandler:
        async def route(
            self: object,
            request: Request[Any, Any, Any],
            tenant: FromPath[str],
            db: NamedDependency[DbPool],
            actor_scope: NamedDependency[Scope],
            runtime: NamedDependency[ServiceRuntime],
            filters: Any,
            as_of: AsOf = None,
        ) -> Stream:
            # Refused (422) here, before the first byte, like the list.
            when = moment(as_of)
            day = day_of(tenant, runtime.clock, when)
            return _file(
                request,
                fmt,
                db,
                tenant,
                actor_scope,
                lambda conn: rows(conn, filters, as_of=when, day=day, scope=actor_scope),
                table,
                name,
            )

        # The filters' own type for the documents (a closure's variable is no annotation).
        route.__annotations__["filters"] = NamedDependency[filters]  # type: ignore[misc,valid-type]
        route.__name__ = route.__qualname__ = f"{operation}_{fmt}"
        article, body = _AS[fmt]
        return get(
            f"{path}.{fmt}",
            guards=list(guards),
            dependencies={"filters": filter_parameters(filters)},
            summary=f"{what} as {article} (every row; same filters)",
            description=(
                f"The rows `GET …{path}` answers for the same filters, scope and `as_of`, every "
                f"page, as {body}. Headers and labels in the `Accept-Language` language."
            ),
            media_type=_MEDIA_TYPES[fmt],
        )(route)

    return route_for(Format.CSV), route_for(Format.XLSX)


def _file(
    request: Request[Any, Any, Any],
    fmt: Format,
    db: DbPool,
    tenant: str,
    scope: Scope,
    rows: Callable[[DbConnection], AsyncIterator[Any]],
    table: Table,
    name: Label,
) -> Stream:
    """The rows `rows(conn)` yields, in the tenant's transaction narrowed to `scope`, as a
    `fmt` file named `<name>-<tenant>.<format>` in the caller's language.

    The transaction opens when the body starts, not before: a response that is never sent
    (its access entry failed) holds no connection. A failure after the first byte can only
    cut the stream short: the client sees an incomplete transfer, never a partial file
    that looks whole."""
    language = negotiate(request.headers.get("accept-language"))
    filename = f"{name.in_language(language)}-{tenant}.{fmt}"

    async def body() -> AsyncIterator[bytes]:
        async with scoped_transaction(db, tenant, scope) as conn:
            source = rows(conn)
            chunks = (
                _csv(source, table, language)
                if fmt is Format.CSV
                else _xlsx(source, table, language, name.in_language(language))
            )
            async for chunk in chunks:
                yield chunk

    return Stream(
        body(),
        media_type=_MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": _disposition(filename),
            "Content-Language": language,
            "Vary": "Accept-Language",
        },
    )
