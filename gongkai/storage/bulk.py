"""Inserting many rows at the driver's speed.

SQLAlchemy's executemany builds and converts a parameter dictionary per row: about 9 µs a row
on the 2-core machine the benchmarks ran on, where SQLite itself needs 6. A worker writes an
attempt row for every message it sends, so those go through the driver's own executemany. The
columns' bind processors still convert every value, so the rows read back exactly as if
SQLAlchemy had written them.
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

_Plan = tuple[str, list[Callable[[Any], Any] | None]]
_plans: dict[tuple[str, str, tuple[str, ...]], _Plan] = {}


def _plan(dialect: Dialect, table: Table, names: tuple[str, ...]) -> _Plan:
    key = (dialect.name, table.name, names)
    if key not in _plans:
        quote = dialect.identifier_preparer.quote
        marker = _MARKERS[dialect.paramstyle]
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join(marker(i) for i in range(1, len(names) + 1))})"
        )
        processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
        _plans[key] = (sql, processors)
    return _plans[key]


async def insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys, in the session's transaction."""
    if not rows:
        return
    conn = await session.connection()
    sql, processors = _plan(conn.dialect, table, tuple(rows[0]))
    params = [
        tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, row.values(), strict=True)
        )
        for row in rows
    ]
    await conn.exec_driver_sql(sql, params)
