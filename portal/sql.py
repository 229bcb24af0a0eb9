"""Small helpers for the set-based SQL of batch work, shared by every app."""

from __future__ import annotations

import json
from datetime import date, datetime

from django.db import connection

__all__ = ["as_date", "db_time", "execute", "rows_source", "temp_table_drop"]


def rows_source(columns: dict[str, str], rows: list[tuple]) -> tuple[str, list]:
    """A derived table of `rows` with the given column names and PostgreSQL types, to select
    or join from. Returns (SQL of a parenthesised subquery, its parameters).

    PostgreSQL gets ONE parameter, the rows as a JSON array read by json_to_recordset: the
    statement text does not depend on the number of rows, and encoding is C-fast (thousands
    of separate parameters, or arrays, cost more on the client than the statement itself on
    the server). SQLite, the embedded demo database, gets VALUES."""
    names = list(columns)
    if connection.vendor == "postgresql":
        document = json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=str)
        fields = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        return f"(SELECT * FROM json_to_recordset(%s::json) AS u({fields}))", [document]
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    aliases = ", ".join(f"column{i} AS {name}" for i, name in enumerate(names, start=1))
    values = ", ".join([one] * len(rows))
    return f"(SELECT {aliases} FROM (VALUES {values}))", [v for row in rows for v in row]


def execute(sql: str, params: list | dict) -> list[tuple]:
    """Run one statement; its rows when it returns any."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def db_time(moment: datetime | str | None):
    """A timestamp as the database stores it (SQLite: UTC text; PostgreSQL: as is)."""
    if moment is None or isinstance(moment, str):  # str: as read back from SQLite
        return moment
    return connection.ops.adapt_datetimefield_value(moment)


def as_date(value) -> date:
    """A date column's value (SQLite gives text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def temp_table_drop(cursor, name: str) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {name}")


def batch_statement_settings(cursor) -> None:
    """For the rest of the transaction, on PostgreSQL: no JIT compilation and no parallel
    workers. The engines' statements are long CASE expressions over the population, read
    once: compiling them costs seconds (3.8 s of a 9.8 s tier evaluation at a million
    members), and each parallel worker would aggregate the statistics again on two cores
    (bench/README.md, "nightly")."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
