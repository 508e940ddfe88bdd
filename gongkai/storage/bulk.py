"""Inserting and updating many rows at the driver's speed.

SQLAlchemy's executemany builds and converts a parameter dictionary per row: about 9 µs a row
on the 2-core machine the benchmarks ran on, where SQLite itself needs 6. A worker writes an
attempt row for every message it sends, and a directory import writes a county's ten thousand
targets at once, so those go through the driver's own executemany. The columns' bind processors
still convert every value, so the rows read back exactly as if SQLAlchemy had written them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlmodel.ext.asyncio.session import AsyncSession

_MARKERS: dict[str, Callable[[int], str]] = {
    "qmark": lambda _: "?",
    "numeric_dollar": lambda i: f"${i}",
    "numeric": lambda i: f":{i}",
    "format": lambda _: "%s",
}

_Processors = list[Callable[[Any], Any] | None]
_Plan = tuple[str, _Processors]
_plans: dict[tuple[str, str, str, tuple[str, ...]], _Plan] = {}


def _processors(dialect: Dialect, table: Table, names: tuple[str, ...]) -> _Processors:
    return [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]


def _insert_plan(dialect: Dialect, table: Table, names: tuple[str, ...]) -> _Plan:
    key = ("insert", dialect.name, table.name, names)
    if key not in _plans:
        quote = dialect.identifier_preparer.quote
        marker = _MARKERS[dialect.paramstyle]
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join(marker(i) for i in range(1, len(names) + 1))})"
        )
        _plans[key] = (sql, _processors(dialect, table, names))
    return _plans[key]


def _update_plan(dialect: Dialect, table: Table, names: tuple[str, ...], where: str) -> _Plan:
    """``UPDATE table SET a = ?, b = ? WHERE where = ?``: the key's value goes last."""
    key = ("update:" + where, dialect.name, table.name, names)
    if key not in _plans:
        quote = dialect.identifier_preparer.quote
        marker = _MARKERS[dialect.paramstyle]
        sets = ", ".join(f"{quote(n)} = {marker(i)}" for i, n in enumerate(names, 1))
        sql = (
            f"UPDATE {quote(table.name)} SET {sets} WHERE {quote(where)} = {marker(len(names) + 1)}"
        )
        _plans[key] = (sql, _processors(dialect, table, (*names, where)))
    return _plans[key]


def _params(processors: _Processors, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each row with its values converted, visiting only the columns that have a converter
    (an attempt row has two timestamps among nine columns)."""
    width = len(processors)
    active = [(i, p) for i, p in enumerate(processors) if p is not None]
    params: list[tuple[Any, ...]] = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} values for {width} columns")
        if active:
            values = list(row)
            for i, process in active:
                if values[i] is not None:
                    values[i] = process(values[i])
            row = tuple(values)
        params.append(row)
    return params


async def insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys, in the session's transaction."""
    if not rows:
        return
    conn = await session.connection()
    sql, processors = _insert_plan(conn.dialect, table, tuple(rows[0]))
    await conn.exec_driver_sql(sql, _params(processors, [tuple(r.values()) for r in rows]))


async def update_rows(
    session: AsyncSession, table: Table, where: str, rows: list[dict[str, Any]]
) -> None:
    """Update rows found by their ``where`` column (a unique key; every row names it); the
    rows all set the same other columns. One executemany, in the session's transaction."""
    if not rows:
        return
    conn = await session.connection()
    names = tuple(k for k in rows[0] if k != where)
    sql, processors = _update_plan(conn.dialect, table, names, where)
    values = [(*(r[n] for n in names), r[where]) for r in rows]
    await conn.exec_driver_sql(sql, _params(processors, values))
