"""Bulk INSERTs of the payout hot path in plain SQL (audit events, payout attempts).

Why not ``bulk_create``: a multi-row ``INSERT … VALUES (…), (…)`` of 64 payouts carries ~800
placeholders; Django prepares each value through the compiler and psycopg re-parses the long
statement on every call (it caches only short ones). Together that cost more CPU than the rest
of the payout's bookkeeping (py-spy under ``benchmarks/engine.py``). Here PostgreSQL receives
one array per column and a statement of constant text (``INSERT … SELECT * FROM unnest(…)``);
other databases (the SQLite embedded default) get ``executemany`` of a one-row statement.

Values are prepared by each field's own ``get_db_prep_save``, so types and JSON adaptation are
Django's; columns the caller does not name take the model's defaults (``auto_now`` and
``auto_now_add`` fields: the time of the call), as ``Model.save`` would give them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.utils import timezone


@dataclass(frozen=True)
class _Plan:
    """What one (model, columns, returning, database) insert needs, computed once."""

    fields: tuple[models.Field, ...]  # named columns first, then the defaulted ones
    named: tuple[models.Field | None, ...]  # per named column: the field to prepare with, or None
    defaulted: tuple[models.Field, ...]
    statement: str  # the PostgreSQL unnest statement, or the one-row VALUES statement
    returning_tail: str


# fields whose database value is the Python value itself for int, str, bool and None (their
# get_db_prep_save is skipped for those: preparing every value cost more than the INSERT)
_PLAIN = frozenset({
    "AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "ForeignKey", "IntegerField",
    "OneToOneField", "PositiveBigIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField",
    "SmallIntegerField", "TextField",
})


@functools.lru_cache(maxsize=64)
def _plan(model: type[models.Model], columns: tuple[str, ...], returning: str | None, vendor: str) -> _Plan:
    ops = connection.ops
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    named = [by_attname[name] for name in columns]
    defaulted = [f for f in model._meta.concrete_fields if f.attname not in columns and f is not model._meta.pk]
    fields = (*named, *defaulted)
    table = ops.quote_name(model._meta.db_table)
    names = ", ".join(ops.quote_name(f.column) for f in fields)
    tail = ""
    if returning is not None:
        tail = f" RETURNING {ops.quote_name(by_attname[returning].column)}, {ops.quote_name(model._meta.pk.column)}"
    if vendor == "postgresql":
        arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
        statement = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"
    else:
        statement = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))})"
    prepare = tuple(None if f.get_internal_type() in _PLAIN else f for f in named)
    return _Plan(fields, prepare, tuple(defaulted), statement, tail)


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, returning: str | None = None
) -> list[tuple[Any, int]]:
    """Insert ``rows`` (tuples in ``columns`` order; columns are field attnames such as
    ``distribution_id``; the others take their defaults) into ``model``'s table. With
    ``returning`` (a unique column's attname) returns ``[(that column's value, new primary
    key), …]``; otherwise ``[]``.

    Raises ``KeyError`` for an unknown column, and the database's ``IntegrityError`` if a
    constraint refuses a row (the statement inserts all rows or none)."""
    if not rows:
        return []
    plan = _plan(model, tuple(columns), returning, connection.vendor)
    now = timezone.now()
    defaults = [
        f.get_db_prep_save(now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default(),
                           connection)
        for f in plan.defaulted
    ]
    prepared = [
        [
            value if f is None and (value is None or type(value) in (int, str, bool))
            else field.get_db_prep_save(value, connection)
            for f, field, value in zip(plan.named, plan.fields[: len(plan.named)], row, strict=True)
        ] + defaults
        for row in rows
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(plan.statement + plan.returning_tail, [list(column) for column in zip(*prepared, strict=True)])
            return [tuple(r) for r in cursor.fetchall()] if returning is not None else []
        if returning is None:
            cursor.executemany(plan.statement, prepared)
            return []
        out = []
        for row in prepared:
            cursor.execute(plan.statement + plan.returning_tail, row)
            out.append(tuple(cursor.fetchone()))
        return out


_UPSERT_CHUNK = 500  # rows per INSERT statement (SQLite's bound-parameter limit is 32,766)


def upsert_adding(table: str, key: tuple[str, ...], fixed: tuple[str, ...], added: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert ``rows`` (values of ``key + fixed + added``) into ``table``; where a row with the
    same ``key`` exists, add the ``added`` values onto it (``fixed`` ones are only written on
    insert). One statement per ``_UPSERT_CHUNK`` rows."""
    if not rows:
        return
    qn = connection.ops.quote_name
    names = ", ".join(qn(c) for c in key + fixed + added)
    updates = ", ".join(f"{qn(c)} = {qn(table)}.{qn(c)} + excluded.{qn(c)}" for c in added)
    placeholder = "(" + ", ".join(["%s"] * len(key + fixed + added)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _UPSERT_CHUNK):
            chunk = rows[start:start + _UPSERT_CHUNK]
            cursor.execute(
                f"INSERT INTO {qn(table)} ({names}) VALUES {', '.join([placeholder] * len(chunk))} "  # noqa: S608 - quoted identifiers; values are parameters
                f"ON CONFLICT ({', '.join(qn(c) for c in key)}) DO UPDATE SET {updates}",
                [value for row in chunk for value in row],
            )
