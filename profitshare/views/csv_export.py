"""CSV exports of the pages, streamed: cells a spreadsheet will not run as formulas, one line
at a time (a large history streams in bounded memory)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_safe(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP "CSV injection"): text starting
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``. Our own amounts
    (``-12.500000``) are plain numbers and stay as they are."""
    if value.startswith(_FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` returns the line (for streaming ``csv.writer``)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
    """The CSV text of ``header`` then each row (lists of cells, each made ``csv_safe``), one
    line per item."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(csv_safe(cell) for cell in row)


def csv_response(
    header: list[str], rows: Iterable[list[str]], *, name: str
) -> StreamingHttpResponse:
    """A streamed ``text/csv`` attachment named ``quantumvault-<name>-<UTC date>.csv``."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="quantumvault-{name}-{stamp}.csv"'
    return response
