"""Lists of a read model with filters, text search, paging and a total count: now, or as of
a moment (its history table, `shared.projections.temporal`), one page or every row
(downloads stream them through a cursor).

A read model declares its filters once, as a msgspec Struct whose fields are the query
parameters (with their Litestar `Parameter` rules) and, by name, the columns they match:

    class InstitutionFilters(msgspec.Struct, kw_only=True, frozen=True):
        status: InstitutionStatus | None = None
        pdm: Annotated[str | None, Parameter(pattern=r"^\\d{4}$")] = None
        q: SearchText = None

Adding a filter on a column is one field. `filter_parameters(InstitutionFilters)` turns the
Struct into a Litestar dependency, so every route taking it (the list, its downloads, the
public directory) gets the same parameters, rules and OpenAPI description.

Text search: a `SearchText` field matches every word of it, anywhere, in the row's search
column: text the projection writes with `searchable(...)`, folded (case, accents and
punctuation away), so "aisyiyah" finds "'Aisyiyah" (any apostrophe) and "Jose" finds
"José". Folding in
Python, not with `unaccent` in SQL: `unaccent` is not immutable (no index on it) and the
embedded `pgserver` PostgreSQL ships without it. The words are `LIKE '%word%'`
conditions on the tenant's rows. No index answers them: under row-level security a
non-leakproof operator such as LIKE is evaluated after the policies, never as an index
condition (a trigram index served the owner login only, and went: the registry's
migration 011).

Derived columns: a value that changes as days pass, with no event to record it (a licence
is valid, then expiring, then expired), cannot be stored; `derived` names such columns with
the SQL that computes them from stored ones and the day the list is of (today, or the day
of `as_of`, in the caller's calendar: the caller passes `day`). A view field or a filter
with a derived column's name reads that expression.

A page and its total come from one statement (one snapshot), in one of two forms, because
PostgreSQL misjudges these lists: the row-level security policies' scope conditions
(`coalesce(current_setting(...), '') IN ('', pdm)`) get default selectivities, so the
planner expects a tenant's list to hold about one row and always reads every match and
sorts it, never walks an index in the list's order and stops at the page's end.
- The whole list (no filter, the whole province): the page walks the index matching
  `order` (the read model declares it) and stops after the page; the total is a count of
  its own. The statement runs as a cursor, which PostgreSQL plans for its first rows
  (`cursor_tuple_fraction`): the walk, where a plain statement would sort. Measured with
  10,000 institutions in a province: 9.0 ms (sorting every row with its count) -> 3.3 ms,
  nearly all of it the count.
- A narrowed list (a filter, or a reader's PDM or institution): one read of the matching
  rows gives both the page (sorted) and the total (`count(*) OVER ()`). Walking the index
  to collect a page of sparse matches reads most of the list, and a count of its own then
  reads it all again: a rare word went from 3.0 to 7.5 ms that way. A reader's scope is
  also written into the WHERE (`pdm_column`, `institution_column`), though the policy
  already narrows to it: the policy's condition uses no index, a plain `pdm = $n` does
  (a PDM operator's page: 3.4 -> 0.4 ms).
"""

from __future__ import annotations

import inspect
import re
import unicodedata
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar, get_origin, get_type_hints

import msgspec
from litestar.di import Provide
from litestar.params import Parameter, QueryParameter

from shared.db.pool import DbConnection
from shared.domain.organisation import PROVINCE, Scope
from shared.projections.temporal import TemporalTable

T = TypeVar("T", bound=msgspec.Struct)
F = TypeVar("F", bound=msgspec.Struct)

SEARCH_MAX_LENGTH = 100
# More words than this narrow nothing a person meant; they would only multiply the
# statements the server prepares.
SEARCH_MAX_WORDS = 8

SearchText = Annotated[
    str | None,
    Parameter(
        min_length=1,
        max_length=SEARCH_MAX_LENGTH,
        description="words to find in the name and address: each word, anywhere, "
        "ignoring case and accents (`wiyung lksa`)",
    ),
]

_NOT_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """`text` as search compares it: accents off (NFKD without combining marks), case
    folded, every run of punctuation or space one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", bare.casefold()).strip()


def searchable(*parts: str | None) -> str:
    """The search column's value for a row: its searchable texts, folded."""
    return fold(" ".join(p for p in parts if p))


def _words(text: str) -> list[str]:
    return fold(text).split()[:SEARCH_MAX_WORDS]


class Page(msgspec.Struct, Generic[T]):
    """One page of a list and how many rows the whole list has."""

    items: list[T]
    total: int


@dataclass(frozen=True)
class Listing(Generic[T, F]):
    """The rows of `table` as `view`, narrowed by the `filters` Struct (field = column,
    except the `search` fields, which match the folded `search_column`), ordered by
    `order` (which must end with a unique column: pages never overlap; an index on
    `tenant_id` followed by `order` serves the whole list's pages); `derived`: the
    columns computed at read, each an SQL expression of the parameter holding the day;
    `pdm_column` / `institution_column`: the columns the table's row-level security
    policy narrows a scoped reader by."""

    view: type[T]
    table: TemporalTable
    filters: type[F]
    order: str
    search_column: str = "search"
    derived: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    pdm_column: str | None = None
    institution_column: str | None = None

    def _column(self, name: str) -> str:
        # The day is always the first parameter when a derived column is read.
        expression = self.derived.get(name)
        return name if expression is None else f"({expression('$1::date')})"

    def _where(self, filters: F, args: list[Any], scope: Scope = PROVINCE) -> str:
        conditions: list[str] = []
        for name in self.filters.__struct_fields__:
            value = getattr(filters, name)
            if value is None:
                continue
            if _is_search(self.filters, name):
                words = _words(value)
                if not words:
                    # Nothing to look for (only punctuation): nothing found.
                    conditions.append("false")
                for word in words:
                    args.append(f"%{word}%")
                    conditions.append(f"{self.search_column} LIKE ${len(args)}")
                continue
            args.append(value.value if isinstance(value, Enum) else value)
            conditions.append(f"{self._column(name)} = ${len(args)}")
        # What the policy already enforces, said where an index can answer it.
        for column, value in (
            (self.pdm_column, scope.pdm),
            (self.institution_column, scope.institution),
        ):
            if column is not None and value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        return " AND ".join(conditions) or "true"

    def _query(
        self, filters: F, as_of: datetime | None, day: date | None, scope: Scope
    ) -> tuple[str, str, list[Any]]:
        """The list's columns and `FROM … WHERE …`, and their parameters."""
        used = {
            *self.view.__struct_fields__,
            *(n for n in self.filters.__struct_fields__ if getattr(filters, n) is not None),
        } & self.derived.keys()
        args: list[Any] = []
        if used:
            if day is None:
                raise ValueError(f"{sorted(used)} depend on the day the list is of: pass `day`")
            args.append(day)
        where = self._where(filters, args, scope)
        source = self.table.table
        if as_of is not None:
            args.append(as_of)
            source = self.table.history
            where = f"{self.table.valid_at(f'${len(args)}')} AND {where}"
        columns = ", ".join(
            c if c not in self.derived else f"{self._column(c)} AS {c}"
            for c in self.view.__struct_fields__
        )
        return columns, f"FROM {source} WHERE {where}", args

    def _select(
        self,
        filters: F,
        as_of: datetime | None,
        day: date | None,
        scope: Scope = PROVINCE,
        tail: str = "",
    ) -> tuple[str, list[Any]]:
        columns, rows, args = self._query(filters, as_of, day, scope)
        return f"SELECT {columns}{tail} {rows} ORDER BY {self.order}", args

    def _narrowed(self, filters: F, scope: Scope) -> bool:
        return scope != PROVINCE or any(
            getattr(filters, name) is not None for name in self.filters.__struct_fields__
        )

    async def page(
        self,
        conn: DbConnection,
        filters: F,
        *,
        limit: int,
        offset: int,
        as_of: datetime | None = None,
        day: date | None = None,
        scope: Scope = PROVINCE,
    ) -> Page[T]:
        """One page and the list's total, from one statement (one snapshot); `scope`: the
        reader's, which the transaction's row-level security already applies."""
        if self._narrowed(filters, scope):
            sql, args = self._select(
                filters, as_of, day, scope, tail=", count(*) OVER () AS total_count"
            )
            rows = await conn.fetch(
                f"{sql} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}", *args, limit, offset
            )
        else:
            columns, matching, args = self._query(filters, as_of, day, scope)
            # A cursor: planned for its first rows, so the page walks the index (see the
            # module's docstring); the count, a subquery naming no column of the row, is
            # computed once, in the same snapshot. Named by its columns: asyncpg keeps the
            # row shape of each statement it prepared, `FETCH ALL FROM <name>` included, so
            # one name for lists of other columns would read rows of one with the other's.
            cursor = f"listing_page_{zlib.crc32(columns.encode()):08x}"
            await conn.execute(
                f"""DECLARE {cursor} NO SCROLL CURSOR FOR
                    SELECT {columns}, (SELECT count(*) {matching}) AS total_count
                    {matching} ORDER BY {self.order}
                    LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}""",
                *args,
                limit,
                offset,
            )
            rows = await conn.fetch(f"FETCH ALL FROM {cursor}")
            await conn.execute(f"CLOSE {cursor}")
        if rows:
            total = int(rows[0]["total_count"])
        elif offset == 0:
            total = 0
        else:
            # Past the end: no row carries the count.
            count_sql, count_args = self._select(filters, as_of, day, scope)
            total = int(
                await conn.fetchval(f"SELECT count(*) FROM ({count_sql}) AS l", *count_args)
            )
        fields = self.view.__struct_fields__
        return Page([self.view(**{f: row[f] for f in fields}) for row in rows], total)

    async def rows(
        self,
        conn: DbConnection,
        filters: F,
        *,
        as_of: datetime | None = None,
        day: date | None = None,
        scope: Scope = PROVINCE,
    ) -> AsyncIterator[T]:
        """Every row, through a server-side cursor (`conn` must be in a transaction): a
        download of thousands of rows holds a batch in memory, not the list."""
        sql, args = self._select(filters, as_of, day, scope)
        async for row in conn.cursor(sql, *args, prefetch=500):
            yield self.view(**dict(row))


def _is_search(filters: type[msgspec.Struct], name: str) -> bool:
    return bool(get_type_hints(filters, include_extras=True)[name] == SearchText)


def _from_query(hint: Any) -> Any:
    """A field's type as a query parameter: as declared when it carries its `Parameter`,
    else marked as one (Litestar deprecates inferring where a parameter comes from)."""
    if get_origin(hint) is Annotated:
        return hint
    return Annotated[hint, QueryParameter()]


def filter_parameters(filters: type[F]) -> Provide:
    """A Litestar dependency building `filters` from the query parameters its fields
    declare (name, type, `Parameter` rules and default), for every route that lists."""
    hints = get_type_hints(filters, include_extras=True)
    # msgspec keeps the defaults of the last fields, in order.
    with_default = filters.__struct_fields__[
        len(filters.__struct_fields__) - len(filters.__struct_defaults__) :
    ]
    defaults = dict(zip(with_default, filters.__struct_defaults__, strict=True))
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_from_query(hints[name]),
            default=defaults.get(name, inspect.Parameter.empty),
        )
        for name in filters.__struct_fields__
    ]

    async def provide(**values: Any) -> F:
        return filters(**values)

    # Litestar reads a dependency's parameters from its signature and type hints.
    provide.__signature__ = inspect.Signature(parameters, return_annotation=filters)  # type: ignore[attr-defined]
    provide.__annotations__ = {**{p.name: p.annotation for p in parameters}, "return": filters}
    return Provide(provide)


__all__ = [
    "Listing",
    "Page",
    "SearchText",
    "filter_parameters",
    "fold",
    "searchable",
]
